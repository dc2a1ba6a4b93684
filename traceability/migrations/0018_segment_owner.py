"""Segments say whose units they hold (``owner``, ``owners_mixed``), so a party's share of a trace
is summed per segment like the unscoped count; existing segments are filled from their members."""

import django.db.models.deletion
from django.db import migrations, models


def _owners_filled(apps, schema_editor):
    """One statement, set-based: each segment's owner is one of its units' owners, and it is mixed
    when its units have more than one. Segments without members keep no owner."""
    Segment = apps.get_model("traceability", "Segment")
    SegmentMember = apps.get_model("traceability", "SegmentMember")
    Unit = apps.get_model("packs", "Unit")
    segment, member, unit = Segment._meta.db_table, SegmentMember._meta.db_table, Unit._meta.db_table
    owners = f"FROM {member} m JOIN {unit} u ON u.id = m.unit_id WHERE m.segment_id = {segment}.id"
    schema_editor.execute(
        f"UPDATE {segment} SET owner_id = (SELECT MIN(u.owner_id) {owners}),"
        f" owners_mixed = (SELECT COUNT(DISTINCT u.owner_id) > 1 {owners})"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('packs', '0001_initial'),
        ('suppliers', '0003_membership_role'),
        ('traceability', '0017_regulator_grants'),
    ]

    operations = [
        migrations.AddField(
            model_name='segment',
            name='owner',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, help_text='The owner of its units (of one of them when they are mixed; none while it has no members).', null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='suppliers.organisation'),
        ),
        migrations.AddField(
            model_name='segment',
            name='owners_mixed',
            field=models.BooleanField(default=False, help_text='Units of more than one organisation joined it.'),
        ),
        migrations.RunPython(_owners_filled, migrations.RunPython.noop, elidable=True),
    ]
