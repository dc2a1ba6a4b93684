"""The pure trace algorithm: the link rule on hand-built graphs, without a database."""

from traceability.genealogy.trace import Link, Reached, links_reachable, reach, segments_reached


def fetcher(links):
    calls = []

    def fetch(frontier):
        calls.append(sorted(frontier))
        return [link for link in links if link.source in frontier]

    return fetch, calls


def test_definite_path_of_depth_four_beats_a_shorter_potential_one():
    # given 1 → 2 → 3 → 4 → 5 all definite, and a potential shortcut 1 → 5
    links = [Link(1, 2, True, 10), Link(2, 3, True, 11), Link(3, 4, True, 12), Link(4, 5, True, 13)]
    links.append(Link(1, 5, False, 14))
    # when
    result = reach([1], links)
    # then
    assert result[5] == Reached(True, tuple(links[:4]))
    assert result[1] == Reached(True, ())


def test_one_potential_link_makes_everything_below_it_potential():
    # given 1 → 2 (potential) → 3 → 4 (definite)
    links = [Link(1, 2, False, 10), Link(2, 3, True, 11), Link(3, 4, True, 12)]
    # when
    result = reach([1], links)
    # then
    assert {node: r.definite for node, r in result.items()} == {1: True, 2: False, 3: False, 4: False}
    assert result[4].path == tuple(links)


def test_reachable_links_are_fetched_once_per_level_and_cycles_end_the_walk():
    # given a diamond with a cycle back to the top
    links = [Link(1, 2, True, 1), Link(1, 3, True, 2), Link(2, 4, True, 3), Link(3, 4, False, 4), Link(4, 1, True, 5)]
    fetch, calls = fetcher(links)
    # when
    found = links_reachable([1], fetch)
    # then
    assert sorted(found) == sorted(links)
    assert calls == [[1], [2, 3], [4]]


def test_segment_is_definite_only_through_a_definite_lot_and_its_own_definite_link():
    # given lot 1 definite, lot 2 potential
    lots = {1: Reached(True, ()), 2: Reached(False, (Link(9, 2, False, 7),))}
    inputs = [(100, 1, True), (101, 2, True), (102, 1, False), (103, 1, True), (103, 2, True), (104, 99, True)]
    # when
    result = segments_reached(lots, inputs)
    # then
    assert {s: (r.definite, r.via_lot) for s, r in result.items()} == {
        100: (True, 1),
        101: (False, 2),
        102: (False, 1),
        103: (True, 1),
    }
