"""The party roll-up (``SegmentOwner``): member rows per (segment, owner of the unit), so a party's
share of a trace sums segments holding two organisations' units too, with the unit id bounds a page
in id order prunes segments by; existing members backfilled."""

import django.db.models.deletion
from django.db import migrations, models

BACKFILL = """INSERT INTO traceability_segmentowner (segment_id, owner_id, unit_count, first_unit_id, last_unit_id)
    SELECT m.segment_id, u.owner_id, COUNT(*), MIN(m.unit_id), MAX(m.unit_id) FROM traceability_segmentmember m
    JOIN packs_unit u ON u.id = m.unit_id GROUP BY m.segment_id, u.owner_id"""


class Migration(migrations.Migration):

    dependencies = [
        ('packs', '0001_initial'),
        ('suppliers', '0005_memberships_and_api_tokens'),
        ('traceability', '0018_segment_owner'),
    ]

    operations = [
        migrations.CreateModel(
            name='SegmentOwner',
            fields=[
                ('pk', models.CompositePrimaryKey('segment_id', 'owner_id', blank=True, editable=False, primary_key=True, serialize=False)),
                ('unit_count', models.BigIntegerField(help_text='Member rows ever written of this owner\'s units, retracted ones included.')),
                ('first_unit_id', models.BigIntegerField(help_text='The smallest unit id among those rows.')),
                ('last_unit_id', models.BigIntegerField(help_text='The largest unit id among those rows.')),
                ('owner', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='suppliers.organisation')),
                ('segment', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='traceability.segment')),
            ],
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop, elidable=True),
    ]
