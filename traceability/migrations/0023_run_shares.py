"""Trace runs store the share of each organisation told of their finding (``TraceRun.shares``), so
reading a finding about one's lots traces nothing; runs finished before keep none (null)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('traceability', '0022_graphql_audit'),
    ]

    operations = [
        migrations.AddField(
            model_name='tracerun',
            name='shares',
            field=models.JSONField(blank=True, default=None, help_text="The share of the result of each organisation told of the finding (by organisation id, in party_view's shape); null for a run finished before shares were stored.", null=True),
        ),
    ]
