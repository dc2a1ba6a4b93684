"""The genealogy: one directed acyclic graph of "made from" facts, and the reads and writes over it.

``models`` (transformations, links, segments), ``trace`` (the pure algorithm), ``writes`` (records and
retractions), ``commissioning`` (units and packing), and the reads, one module per idea: ``snapshot``
(a ledger position), ``forward``, ``counts``, ``groups``, ``affected``, ``consignees``, ``diff``,
``backward``, ``siblings`` and ``explain``; where units went (``receipts``, ``parties``, over
``packing``: how containers nest); and ``read_models``, what interfaces render of one unit or lot (its
upstream, its siblings). The reads' public names are gathered here, so a caller writes
``genealogy.forward_trace(...)``.
"""

from traceability.genealogy.affected import (
    PAGE,
    AffectedUnit,
    affected_units,
    all_affected_units,
    merge_params,
    merge_sql,
    segment_exposures,
)
from traceability.genealogy.backward import Backward, backward_trace, lots_by_id
from traceability.genealogy.consignees import Consignee, affected_per_container, consignee_countries, consignees
from traceability.genealogy.counts import (
    REPEATED_AS_CONSTANTS,
    affected_counts,
    segment_sizes,
    segments_written_by,
    sums_of,
)
from traceability.genealogy.diff import Diff, best_exposures, forward_diff, segment_changes
from traceability.genealogy.explain import PathStep, explain_paths
from traceability.genealogy.forward import Forward, forward_trace, forward_unit_ids, members, walk
from traceability.genealogy.groups import UnitGroup, affected_groups
from traceability.genealogy.parties import (
    OthersCount,
    PartyView,
    party_part,
    party_view,
    received_anything,
    received_containers,
    received_units,
    units_of,
    units_packed_in,
    units_sold_into,
)
from traceability.genealogy.read_models import (
    CertificateSummary,
    InspectionResult,
    LotSummary,
    Party,
    SiblingsPage,
    SiteSummary,
    UnitSummary,
    Upstream,
    UpstreamLot,
    UpstreamUnit,
    parties_by_id,
    party_of,
    siblings_page,
    unit_summary,
    upstream_read,
)
from traceability.genealogy.receipts import into_countries, shipped_units, to_organisation, unit_shipped
from traceability.genealogy.siblings import Siblings, siblings, siblings_count
from traceability.genealogy.snapshot import Snapshot, ledger_snapshot

__all__ = [
    "into_countries",
    "shipped_units",
    "to_organisation",
    "unit_shipped",
    "OthersCount",
    "PartyView",
    "party_part",
    "received_anything",
    "party_view",
    "received_containers",
    "received_units",
    "units_of",
    "units_packed_in",
    "units_sold_into",
    "consignee_countries",
    "AffectedUnit",
    "Backward",
    "CertificateSummary",
    "Consignee",
    "Diff",
    "Forward",
    "InspectionResult",
    "LotSummary",
    "PAGE",
    "Party",
    "PathStep",
    "REPEATED_AS_CONSTANTS",
    "Siblings",
    "SiblingsPage",
    "SiteSummary",
    "Snapshot",
    "UnitGroup",
    "UnitSummary",
    "Upstream",
    "UpstreamLot",
    "UpstreamUnit",
    "affected_counts",
    "affected_groups",
    "affected_per_container",
    "affected_units",
    "all_affected_units",
    "backward_trace",
    "best_exposures",
    "consignees",
    "explain_paths",
    "forward_diff",
    "forward_trace",
    "forward_unit_ids",
    "ledger_snapshot",
    "lots_by_id",
    "members",
    "merge_params",
    "merge_sql",
    "parties_by_id",
    "party_of",
    "segment_changes",
    "segment_exposures",
    "segment_sizes",
    "segments_written_by",
    "siblings",
    "siblings_page",
    "siblings_count",
    "sums_of",
    "unit_summary",
    "upstream_read",
    "walk",
]
