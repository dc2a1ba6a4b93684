"""A finished run's breakdown and consignees, stored when it finishes for the readers who see its result
whole (TraceRun.breakdown); runs finished before have none, and are counted on read as before."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('traceability', '0026_supplier_responses'),
    ]

    operations = [
        migrations.AddField(
            model_name='tracerun',
            name='breakdown',
            field=models.JSONField(blank=True, default=None, help_text='The result\'s units counted per product model, work order, site and month of production ({"groups": [[product model id, work order id, site id, "YYYY-MM", units, definite], …]}) and who received them ({"consignees": [[organisation id, units, first, last shipped], …]}), as a reader who sees the whole result reads them; null for a run finished before they were stored.', null=True),
        ),
    ]
