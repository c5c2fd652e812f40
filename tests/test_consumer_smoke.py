import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


async def test_send_and_receive(connect, alice, bob, general):
    a, welcome = await connect(alice)
    assert welcome["room"]["slug"] == "general"
    b, _ = await connect(bob)
    assert (await a.receive_type("presence"))["joined"] == ["bob"]
    await a.send({"type": "message.send", "body": " hi ", "client_id": "c1"})
    mine = await a.receive_type("message")
    theirs = await b.receive_type("message")
    assert mine["id"] == theirs["id"] == 1
    assert mine["client_id"] == "c1" and theirs["client_id"] is None
    assert mine["body"] == "hi"
