"""EPCIS eventIDs are unique per capturing organisation (issue 12): each event keeps its capture's
owner, and UNIQUE(event_id, owner) replaces UNIQUE(event_id). Existing events are filled from their
captures in one statement; their identifiers were unique across the ledger, so they stay unique."""

import django.db.models.deletion
from django.db import migrations, models


def _owners_filled(apps, schema_editor):
    """One statement, set-based: each event's owner is its capture's."""
    EpcisEvent = apps.get_model("traceability", "EpcisEvent")
    EpcisCapture = apps.get_model("traceability", "EpcisCapture")
    event, capture = EpcisEvent._meta.db_table, EpcisCapture._meta.db_table
    schema_editor.execute(
        f"UPDATE {event} SET owner_id = (SELECT c.owner_id FROM {capture} c WHERE c.id = {event}.capture_id)"
    )


class Migration(migrations.Migration):

    dependencies = [
        ('suppliers', '0005_memberships_and_api_tokens'),
        ('traceability', '0020_regulator_inquiries'),
    ]

    operations = [
        migrations.AddField(
            model_name='epcisevent',
            name='owner',
            field=models.ForeignKey(db_constraint=False, db_index=False, help_text='The organisation that captured it (its capture\'s owner).', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='suppliers.organisation'),
        ),
        migrations.RunPython(_owners_filled, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name='epcisevent',
            name='owner',
            field=models.ForeignKey(db_constraint=False, db_index=False, help_text='The organisation that captured it (its capture\'s owner).', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='suppliers.organisation'),
        ),
        migrations.RemoveConstraint(
            model_name='epcisevent',
            name='epcisevent_event_id_unique',
        ),
        migrations.AddConstraint(
            model_name='epcisevent',
            constraint=models.UniqueConstraint(fields=('event_id', 'owner'), name='epcisevent_event_id_owner_unique'),
        ),
    ]
