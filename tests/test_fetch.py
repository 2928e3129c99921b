"""Connection slots of the fetcher: at most per_host per host, few idle sockets kept."""

import asyncio

from monitor.fetch import FetchSettings, _Slots


def test_a_host_never_gets_more_than_per_host_slots():
    async def scenario():
        slots = _Slots(FetchSettings(per_host=2), max_idle=8)
        a = await slots.take("a.example")
        b = await slots.take("a.example")
        third = asyncio.create_task(slots.take("a.example"))
        other = await asyncio.wait_for(slots.take("b.example"), 1)   # other hosts go on
        await asyncio.sleep(0.05)
        assert not third.done()                    # waits for a slot of its host
        await slots.give("a.example", a, reuse=True)
        assert await asyncio.wait_for(third, 1) is a    # the open connection is reused
        for transport in (b, other):
            await transport.aclose()
        await slots.aclose()

    asyncio.run(scenario())


def test_idle_slots_beyond_the_limit_are_closed_oldest_first():
    async def scenario():
        slots = _Slots(FetchSettings(per_host=1), max_idle=2)
        taken = {h: await slots.take(h) for h in ("a", "b", "c")}
        for host in ("a", "b", "c"):
            await slots.give(host, taken[host], reuse=True)
        # "a" was idle longest: closed, so its host may open a new slot
        assert [h for h, _ in slots._order] == ["b", "c"]
        assert slots._count["a"] == 0
        fresh = await asyncio.wait_for(slots.take("a"), 1)
        assert fresh is not taken["a"]
        assert await slots.take("b") is taken["b"]
        await slots.give("a", fresh, reuse=False)   # a failed fetch: closed, not kept
        assert slots._count["a"] == 0 and not slots._idle["a"]
        await slots.aclose()

    asyncio.run(scenario())
