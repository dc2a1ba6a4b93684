"""The audit action of a limit set by its material's or cell model's owner (``cells.services.spec_set``)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('traceability', '0027_run_breakdown'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditentry',
            name='action',
            field=models.CharField(choices=[('finding.record', 'Finding recorded'), ('investigation.transition', 'Investigation moved on'), ('run.start', 'Trace run started'), ('export.start', 'Export started'), ('evidence.attach', 'Evidence attached'), ('inspection.record', 'Inspection results recorded'), ('spec.set', 'Limit of a material or cell model set'), ('response.revise', 'Supplier response (8D) revised'), ('epcis.capture', 'EPCIS document captured'), ('csv.import', 'CSV file imported'), ('certificate.status', 'Certificate status changed'), ('organisation.add', 'Organisation registered'), ('organisation.change', 'Organisation changed'), ('membership.add', 'Member added'), ('membership.change', 'Membership changed'), ('token.issue', 'API token issued'), ('token.revoke', 'API token revoked'), ('grant.add', 'Regulator granted access'), ('grant.revoke', 'Regulator grant revoked'), ('read.api', 'Read through the REST API'), ('read.epcis', 'Read through the EPCIS interface'), ('read.graphql', 'Query through the GraphQL API'), ('write.graphql', 'Mutation through the GraphQL API'), ('read.pages', 'Read through the web pages')], max_length=32),
        ),
    ]
