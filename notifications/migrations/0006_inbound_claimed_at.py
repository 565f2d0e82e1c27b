from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0005_inbound_messages"),
    ]

    operations = [
        migrations.AddField(
            model_name="inboundmessage",
            name="claimed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
