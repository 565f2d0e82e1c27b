"""SignatureNonce moves here from `core` (its table is renamed; the rows are kept)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("core", "0001_signature_nonces")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE core_signaturenonce RENAME TO accounts_signaturenonce",
                    reverse_sql="ALTER TABLE accounts_signaturenonce RENAME TO core_signaturenonce",
                )
            ],
            state_operations=[
                migrations.CreateModel(
                    name="SignatureNonce",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "key",
                            models.CharField(
                                help_text="sha256 of scope:address:nonce", max_length=64, unique=True
                            ),
                        ),
                        ("expires_at", models.DateTimeField(db_index=True)),
                    ],
                )
            ],
        )
    ]
