from django.db import migrations


def forwards(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name="AI agent")


class Migration(migrations.Migration):
    """The AI agent role exists from the start, as the other roles do: a role grant can name it."""

    dependencies = [("h2h_core", "0010_ai_agents_and_hand_offs")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
