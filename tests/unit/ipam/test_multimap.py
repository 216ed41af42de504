"""MultiMap behaves as a dict of ordered sets, whatever the sequence of adds and discards."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ddi.ipam.multimap import MultiMap

ops = st.lists(st.tuples(st.booleans(), st.sampled_from("abc"), st.integers(0, 3)), max_size=60)


@given(ops)
def test_matches_a_dict_of_ordered_members(steps: list[tuple[bool, str, int]]) -> None:
    multimap: MultiMap[str, int] = MultiMap()
    model: dict[str, list[int]] = {}
    for add, key, value in steps:
        members = model.setdefault(key, [])
        if add:
            multimap.add(key, value)
            if value not in members:
                members.append(value)
        else:
            multimap.discard(key, value)
            if value in members:
                members.remove(value)
        if not members:
            del model[key]
    assert {k: list(v) for k, v in multimap.items()} == model
    assert sorted(multimap) == sorted(model)
    assert len(multimap) == len(model)
    for key in "abcd":
        assert multimap.get(key) == tuple(model.get(key, ()))
        assert (key in multimap) == (key in model)


def test_a_lone_member_is_held_bare_and_several_as_a_tuple() -> None:
    multimap: MultiMap[str, str] = MultiMap()
    multimap.add("web1", "h1")
    assert multimap._data == {"web1": "h1"}
    multimap.add("web1", "h2")
    assert multimap._data == {"web1": ("h1", "h2")}
    multimap.discard("web1", "h1")
    assert multimap._data == {"web1": "h2"}
    multimap.discard("web1", "h2")
    assert multimap._data == {}
