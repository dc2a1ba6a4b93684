"""The investigation owner's part of a run's result (TraceRunPart), stored when a run finishes, so its
page reads its first segments by unit bound instead of joining every segment the run reached with the
roll-up; TraceRun.parts_stored says a run has it (runs finished before have none, and are read as before)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('suppliers', '0006_certificate_coverage'),
        ('traceability', '0023_run_shares'),
    ]

    operations = [
        migrations.AddField(
            model_name='tracerun',
            name='parts_stored',
            field=models.BooleanField(db_default=False, default=False, help_text="Its owner's part (TraceRunPart) was stored when it finished."),
        ),
        migrations.CreateModel(
            name='TraceRunPart',
            fields=[
                ('pk', models.CompositePrimaryKey('run_id', 'owner_id', 'first_unit_id', 'segment_id', blank=True, editable=False, primary_key=True, serialize=False)),
                ('first_unit_id', models.BigIntegerField()),
                ('last_unit_id', models.BigIntegerField()),
                ('unit_count', models.BigIntegerField(help_text="Member rows of the owner's units in the segment.")),
                ('owner', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='suppliers.organisation')),
                ('run', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='parts', to='traceability.tracerun')),
                ('segment', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='traceability.segment')),
            ],
        ),
    ]
