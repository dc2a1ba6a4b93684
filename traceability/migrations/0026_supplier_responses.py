"""Suppliers' 8D responses to the investigations that concern their lots, each revision kept whole
(SupplierResponse, SupplierResponseRevision), and the audit actions of responses and inspections."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# A response's revisions are its history: on PostgreSQL the database itself refuses to change or
# remove one, whoever asks (as it does the audit trail's entries, migration 0014), but for its
# author's account being deleted (``by`` is SET_NULL: an UPDATE of that column alone, to NULL).
# SQLite has no such trigger here: there the code alone keeps the rule (nothing updates a revision).
APPEND_ONLY = """
CREATE FUNCTION traceability_responserevision_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.by_id IS NULL AND to_jsonb(NEW) - 'by_id' = to_jsonb(OLD) - 'by_id' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a response''s revisions are kept as written: % of a revision is refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER traceability_responserevision_append_only
    BEFORE UPDATE OR DELETE ON traceability_supplierresponserevision
    FOR EACH ROW EXECUTE FUNCTION traceability_responserevision_append_only();
"""
APPEND_ONLY_REVERSE = """
DROP TRIGGER traceability_responserevision_append_only ON traceability_supplierresponserevision;
DROP FUNCTION traceability_responserevision_append_only();
"""


def _append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY, params=None)


def _append_only_reverse(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_REVERSE, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('suppliers', '0006_certificate_coverage'),
        ('traceability', '0025_audit_page_reads'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditentry',
            name='action',
            field=models.CharField(choices=[('finding.record', 'Finding recorded'), ('investigation.transition', 'Investigation moved on'), ('run.start', 'Trace run started'), ('export.start', 'Export started'), ('evidence.attach', 'Evidence attached'), ('inspection.record', 'Inspection results recorded'), ('response.revise', 'Supplier response (8D) revised'), ('epcis.capture', 'EPCIS document captured'), ('csv.import', 'CSV file imported'), ('certificate.status', 'Certificate status changed'), ('organisation.add', 'Organisation registered'), ('organisation.change', 'Organisation changed'), ('membership.add', 'Member added'), ('membership.change', 'Membership changed'), ('token.issue', 'API token issued'), ('token.revoke', 'API token revoked'), ('grant.add', 'Regulator granted access'), ('grant.revoke', 'Regulator grant revoked'), ('read.api', 'Read through the REST API'), ('read.epcis', 'Read through the EPCIS interface'), ('read.graphql', 'Query through the GraphQL API'), ('write.graphql', 'Mutation through the GraphQL API'), ('read.pages', 'Read through the web pages')], max_length=32),
        ),
        migrations.CreateModel(
            name='SupplierResponse',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('opened_at', models.DateTimeField()),
                ('revision', models.PositiveIntegerField(default=0, help_text='The number of its latest revision.')),
                ('investigation', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='responses', to='traceability.investigation')),
                ('owner', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='suppliers.organisation')),
            ],
            options={
                'ordering': ['opened_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='SupplierResponseRevision',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('status', models.CharField(choices=[('draft', 'Draft: the supplier is working on it'), ('submitted', 'Submitted: every step from containment to prevention answered')], max_length=16)),
                ('team', models.TextField(blank=True, help_text='D1: who works on the problem.')),
                ('problem', models.TextField(blank=True, help_text='D2: the problem as the supplier describes it.')),
                ('containment', models.TextField(blank=True, help_text='D3: what contains it now (lots held, sorted, recalled).')),
                ('root_cause', models.TextField(blank=True, help_text='D4: why it happened, and why it was not detected.')),
                ('corrective_action', models.TextField(blank=True, help_text='D5: the permanent action chosen, and its proof.')),
                ('implementation', models.TextField(blank=True, help_text='D6: how the action was implemented and validated.')),
                ('implemented_on', models.DateField(blank=True, help_text='D6: when it took effect.', null=True)),
                ('prevention', models.TextField(blank=True, help_text='D7: what keeps it and its like from happening again.')),
                ('changed', models.JSONField(default=list, help_text='The steps (field names) this revision changed.')),
                ('at', models.DateTimeField()),
                ('by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                ('response', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='revisions', to='traceability.supplierresponse')),
            ],
            options={
                'ordering': ['response', 'number'],
            },
        ),
        migrations.AddConstraint(
            model_name='supplierresponse',
            constraint=models.UniqueConstraint(fields=('investigation', 'owner'), name='response_once_per_responder'),
        ),
        migrations.AddConstraint(
            model_name='supplierresponserevision',
            constraint=models.UniqueConstraint(fields=('response', 'number'), name='response_revision_numbered_once'),
        ),
        migrations.RunPython(_append_only, _append_only_reverse),
    ]
