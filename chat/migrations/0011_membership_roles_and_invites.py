"""Members get a role (owner or member), and rooms get invite links.

`Room.members` goes through `Membership` now: a new table, filled from the old
one with every existing member kept as a member, then the old one dropped.
Backwards, the members return to the old table and the roles are forgotten.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def members_copy(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    Membership = apps.get_model("chat", "Membership")
    old = Room.members.through.objects.using(schema_editor.connection.alias)
    rows = old.order_by("pk").values_list("room_id", "user_id").iterator(chunk_size=2000)
    batch = []
    for room_id, user_id in rows:
        batch.append(Membership(room_id=room_id, user_id=user_id, role="member"))
        if len(batch) >= 2000:
            Membership.objects.using(schema_editor.connection.alias).bulk_create(batch)
            batch = []
    Membership.objects.using(schema_editor.connection.alias).bulk_create(batch)


def members_copy_back(apps, schema_editor):
    Room = apps.get_model("chat", "Room")
    Membership = apps.get_model("chat", "Membership")
    old = Room.members.through
    rows = Membership.objects.using(schema_editor.connection.alias).values_list("room_id", "user_id")
    old.objects.using(schema_editor.connection.alias).bulk_create(
        [old(room_id=room_id, user_id=user_id) for room_id, user_id in rows.iterator()]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0010_message_author_created"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Membership",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("role", models.CharField(choices=[("owner", "Owner"), ("member", "Member")], default="member", max_length=10)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("room", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="memberships", to="chat.room")),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="chat_memberships", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "ordering": ["room", "user"],
                "constraints": [models.UniqueConstraint(fields=("room", "user"), name="membership_room_user")],
                "indexes": [models.Index(fields=["user", "room"], name="membership_user_room")],
            },
        ),
        migrations.RunPython(members_copy, members_copy_back),
        migrations.RemoveField(model_name="room", name="members"),
        migrations.AddField(
            model_name="room",
            name="members",
            field=models.ManyToManyField(
                blank=True,
                help_text="Who may read and write a private or direct room.",
                related_name="chat_rooms",
                through="chat.Membership",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.CreateModel(
            name="Invite",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.CharField(editable=False, max_length=64, unique=True)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("expires", models.DateTimeField(blank=True, null=True)),
                ("max_uses", models.PositiveIntegerField(blank=True, null=True)),
                ("uses", models.PositiveIntegerField(default=0)),
                ("revoked", models.DateTimeField(blank=True, null=True)),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="chat_invites", to=settings.AUTH_USER_MODEL)),
                ("room", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="invites", to="chat.room")),
            ],
            options={"ordering": ["-created", "-pk"]},
        ),
    ]
