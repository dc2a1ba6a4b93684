"""Sums the trace counts with (segment totals, the consignee roll-up, repeated units), backfilled."""

import django.db.models.deletion
from django.db import migrations, models


BACKFILL = [
    """UPDATE traceability_segment SET last_transformation_id = COALESCE(
        (SELECT MAX(m.transformation_id) FROM traceability_segmentmember m WHERE m.segment_id = traceability_segment.id), 0)""",
    """UPDATE traceability_transformation SET segment_id = s.segment_id
        FROM (SELECT transformation_id, MIN(segment_id) AS segment_id FROM traceability_segmentmember
              GROUP BY transformation_id) s
        WHERE s.transformation_id = traceability_transformation.id""",
    """INSERT INTO traceability_segmentcontainer (segment_id, container_id, rows)
        SELECT m.segment_id, p.container_id, COUNT(*) FROM traceability_segmentmember m
        JOIN packs_unitpacking p ON p.unit_id = m.unit_id GROUP BY m.segment_id, p.container_id""",
    """INSERT INTO traceability_repeatedunit (unit_id)
        SELECT unit_id FROM traceability_segmentmember GROUP BY unit_id HAVING COUNT(*) > 1
        UNION SELECT unit_id FROM packs_unitpacking GROUP BY unit_id HAVING COUNT(*) > 1""",
]


class Migration(migrations.Migration):
    dependencies = [
        ("packs", "0001_initial"),
        ("traceability", "0005_segmentmember_no_separate_segment_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="RepeatedUnit",
            fields=[
                (
                    "unit",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="packs.unit",
                    ),
                ),
            ],
        ),
        migrations.AddField(
            model_name="segment",
            name="last_transformation_id",
            field=models.BigIntegerField(
                default=0, help_text="The newest record among its members: at older positions, count them one by one."
            ),
        ),
        migrations.AddField(
            model_name="transformation",
            name="segment",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                help_text="The segment its lot → unit links went into (a record writes at most one).",
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="traceability.segment",
            ),
        ),
        migrations.CreateModel(
            name="SegmentContainer",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "segment_id", "container_id", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("rows", models.BigIntegerField()),
                (
                    "container",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="packs.container",
                    ),
                ),
                (
                    "segment",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="traceability.segment",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
