"""Segments no longer say whose units they hold: ``owner`` and ``owners_mixed`` (0018) were written
with every member but read by nothing once the party roll-up (``SegmentOwner``, 0019) counted each
owner's units per segment; dropping them saves a read and an UPDATE of the segments per write.

Trace runs store the share of each organisation told of their finding (``TraceRun.shares``), so
reading a finding about one's lots traces nothing; runs finished before keep none (null)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('traceability', '0022_graphql_audit'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='segment',
            name='owner',
        ),
        migrations.RemoveField(
            model_name='segment',
            name='owners_mixed',
        ),
        migrations.AddField(
            model_name='tracerun',
            name='shares',
            field=models.JSONField(blank=True, default=None, help_text="The share of the result of each organisation told of the finding (by organisation id, in party_view's shape); null for a run finished before shares were stored.", null=True),
        ),
    ]
