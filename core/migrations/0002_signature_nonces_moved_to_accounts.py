"""SignatureNonce now belongs to `accounts` (whose first migration renamed the table)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("core", "0001_signature_nonces"), ("accounts", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[], state_operations=[migrations.DeleteModel(name="SignatureNonce")]
        )
    ]
