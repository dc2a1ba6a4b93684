"""Limits of a material's or a cell model's properties (Spec), the measured values of an inspection with
the limits they were judged against (Measurement), and what an inspection's document is and who
recorded it: a lot owner's inspection results and certificates of analysis (issue 15)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('cells', '0001_initial'),
        ('suppliers', '0006_certificate_coverage'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='inspection',
            name='attachment_content_type',
            field=models.CharField(blank=True, help_text='Read from its bytes.', max_length=100),
        ),
        migrations.AddField(
            model_name='inspection',
            name='attachment_name',
            field=models.CharField(blank=True, help_text="The file's name as uploaded.", max_length=255),
        ),
        migrations.AddField(
            model_name='inspection',
            name='attachment_sha256',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name='inspection',
            name='attachment_size',
            field=models.PositiveBigIntegerField(blank=True, help_text='Bytes.', null=True),
        ),
        migrations.AddField(
            model_name='inspection',
            name='recorded_at',
            field=models.DateTimeField(blank=True, help_text='When the ledger received it.', null=True),
        ),
        migrations.AddField(
            model_name='inspection',
            name='recorded_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='inspection',
            name='method',
            field=models.CharField(choices=[('xray', 'X-ray'), ('ct', 'CT scan'), ('ocv', 'Open-circuit voltage'), ('ir', 'Internal resistance'), ('self_discharge', 'Self-discharge'), ('visual', 'Visual'), ('analysis', 'Certificate of analysis'), ('other', 'Other')], max_length=16),
        ),
        migrations.CreateModel(
            name='Measurement',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('property', models.SlugField(max_length=64)),
                ('value', models.DecimalField(decimal_places=6, max_digits=20)),
                ('unit', models.CharField(max_length=16)),
                ('minimum', models.DecimalField(blank=True, decimal_places=6, max_digits=20, null=True)),
                ('maximum', models.DecimalField(blank=True, decimal_places=6, max_digits=20, null=True)),
                ('passed', models.BooleanField()),
                ('inspection', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='results', to='cells.inspection')),
            ],
            options={
                'ordering': ['inspection', 'property'],
                'constraints': [models.UniqueConstraint(fields=('inspection', 'property'), name='measurement_once_per_inspection')],
            },
        ),
        migrations.CreateModel(
            name='Spec',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('property', models.SlugField(help_text='What is measured, as results name it: "moisture", "fe_particle_size".', max_length=64)),
                ('unit', models.CharField(help_text='The unit values are given in, as written: "ppm", "µm", "V".', max_length=16)),
                ('minimum', models.DecimalField(blank=True, decimal_places=6, max_digits=20, null=True)),
                ('maximum', models.DecimalField(blank=True, decimal_places=6, max_digits=20, null=True)),
                ('cell_model', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='specs', to='cells.cellmodel')),
                ('material', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='specs', to='cells.material')),
                ('owner', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='suppliers.organisation')),
            ],
            options={
                'ordering': ['property', 'id'],
                'constraints': [models.CheckConstraint(condition=models.Q(models.Q(('cell_model__isnull', True), ('material__isnull', False)), models.Q(('cell_model__isnull', False), ('material__isnull', True)), _connector='OR'), name='spec_of_one_material_or_cell_model'), models.CheckConstraint(condition=models.Q(('minimum__isnull', False), ('maximum__isnull', False), _connector='OR'), name='spec_has_a_limit'), models.CheckConstraint(condition=models.Q(('minimum__lte', models.F('maximum')), ('minimum__isnull', True), ('maximum__isnull', True), _connector='OR'), name='spec_minimum_within_maximum'), models.UniqueConstraint(fields=('material', 'property'), name='spec_once_per_material_property'), models.UniqueConstraint(fields=('cell_model', 'property'), name='spec_once_per_cell_model_property')],
            },
        ),
    ]
