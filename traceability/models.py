"""Every model of the ``traceability`` app, for Django's app registry.

Each domain package keeps its own models (``core``, ``ledger``, ``genealogy``, ``investigations``,
``epcis``); they keep the app label ``traceability``, so no migration changed when they moved.
Domain code imports models from its own package, never from here: this module imports them all.
"""

from traceability.access.models import Grant, GrantScope  # noqa: F401
from traceability.core.models import (  # noqa: F401
    AuditAction,
    AuditEntry,
    AuditSource,
    Job,
    JobStatus,
)
from traceability.events.models import (  # noqa: F401
    CaptureErrorBehaviour,
    EpcisCapture,
    EpcisEvent,
    EpcisEventEpc,
    EpcisEventType,
    EpcisRole,
)
from traceability.genealogy.models import (  # noqa: F401
    Exposure,
    LotLink,
    RecordKind,
    RepeatedUnit,
    Segment,
    SegmentContainer,
    SegmentInput,
    SegmentMember,
    SegmentOwner,
    Transformation,
    UnitLink,
    exposure_name,
    exposure_of,
)
from traceability.investigations.models import (  # noqa: F401
    Export,
    ExportFormat,
    Finding,
    FindingAttachment,
    FindingCategory,
    Investigation,
    InvestigationStatus,
    InvestigationTransition,
    Severity,
    SubjectKind,
    TraceRun,
    TraceRunCountry,
    TraceRunPart,
    TraceRunSegment,
    TraceRunUnit,
)
from traceability.ledger.models import (  # noqa: F401
    LearntCompanyPrefix,
    LedgerEntry,
    LedgerHead,
    LedgerSource,
)
