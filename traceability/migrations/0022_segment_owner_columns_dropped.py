"""Segments no longer say whose units they hold: ``owner`` and ``owners_mixed`` (0018) were written
with every member but read by nothing once the party roll-up (``SegmentOwner``, 0019) counted each
owner's units per segment; dropping them saves a read and an UPDATE of the segments per write."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('traceability', '0021_event_id_per_owner'),
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
    ]
