"""A fresh install has the public rooms general and random (docs/protocol-v1.md, Rooms)."""

from django.db import migrations

ROOMS = [
    ("general", "General", "Everything and everyone."),
    ("random", "Random", "Off-topic, links and fun."),
]


def create_rooms(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    for slug, name, description in ROOMS:
        Room.objects.get_or_create(
            slug=slug, defaults={"name": name, "description": description, "kind": "public"}
        )


def remove_rooms(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    Room.objects.filter(slug__in=[slug for slug, _, _ in ROOMS], messages__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]

    operations = [migrations.RunPython(create_rooms, remove_rooms)]
