"""Seeded, vectorised generator of the project's source files (see the data contract).

Usage::

    python -m referral_pipeline.generate_data --preset {sample,s,m,xl} --out DIR \
        [--format csv|parquet] [--bad-fraction F] [--seed N]

or from Python::

    from referral_pipeline.generate_data import generate
    counts = generate("data", preset="sample", fmt="csv", bad_fraction=0.003, seed=7)

Writes ``crm/accounts``, ``crm/partners``, ``crm/opportunities``, ``crm/warm_intro_asks``,
``nps/responses`` (CSV or Parquet) and ``qbr/notes`` (JSON Lines or Parquet) under the output folder.
Everything is derived from ``seed`` and a fixed "today" (2026-11-28), so the same arguments give
byte-identical files.  Rows are built column-wise with numpy/pyarrow, in chunks of at most
``CHUNK_ROWS`` rows, so memory stays bounded for the ``xl`` preset.

Valid messiness (always present): mixed-case and padded enum values, ISO timestamps with ``Z``, with a
UTC offset, without offset, with a space instead of ``T`` and bare dates; quoted fields holding commas,
doubled quotes and line breaks; extra CRM columns and a non-contract column order in the opportunities
file; a BOM + CRLF line ends in ``partners.csv``; Unicode everywhere; orphan account ids (~1%) and
customer referrers that resolve to nothing; optional JSON keys left out of some QBR lines.

Rule-breaking rows (``bad_fraction``): spread over the kinds listed in ``BAD_KINDS``; the returned
counts say how many of each kind were written.  ``expected_rejected`` adds the originals of conflicting
duplicates, which the contract quarantines too.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from referral_pipeline.lib import schemas
from referral_pipeline.lib.sources import SOURCES as CONTRACT_SOURCES

# --------------------------------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------------------------------
TODAY = np.datetime64("2026-11-28", "D")
END_S = int(TODAY.astype("datetime64[s]").astype(np.int64))  # exclusive upper bound of event times
DAY = 86_400
CHUNK_ROWS = 1_000_000
QBR_CHUNK_ROWS = 250_000


@dataclass(frozen=True)
class Preset:
    accounts: int
    partners: int
    opportunities: int
    nps: int
    qbrs: int
    asks: int
    start: str
    notes_len: tuple[int, int]
    default_bad_fraction: float


PRESETS: dict[str, Preset] = {
    "sample": Preset(600, 60, 2500, 2000, 900, 1200, "2024-01-01", (120, 480), 0.003),
    "s": Preset(5_000, 50, 50_000, 50_000, 5_000, 15_000, "2022-01-01", (200, 800), 0.0),
    "m": Preset(200_000, 1_000, 1_000_000, 1_000_000, 100_000, 300_000, "2022-01-01", (200, 800), 0.0),
    "xl": Preset(2_000_000, 10_000, 10_000_000, 10_000_000, 1_000_000, 3_000_000, "2022-01-01",
                 (200, 800), 0.0),
}

SOURCES = [source.name for source in CONTRACT_SOURCES]
STEMS = {source.name: source.path_stem for source in CONTRACT_SOURCES}

# bad kinds per source, in priority order (small counts take the first kinds first)
BAD_KINDS: dict[str, list[str]] = {
    "accounts": ["ragged_extra", "invalid_enum", "identical_duplicate", "conflicting_duplicate",
                 "bad_date", "churned_before_customer_since", "missing_required", "ragged_short",
                 "bad_utf8"],
    "partners": ["ragged_extra", "invalid_enum", "identical_duplicate", "conflicting_duplicate",
                 "missing_required", "bad_utf8", "ragged_short"],
    "opportunities": ["ragged_extra", "invalid_enum", "negative_amount", "closed_without_closed_at",
                      "identical_duplicate", "conflicting_duplicate", "bad_utf8", "open_with_closed_at",
                      "closed_before_created", "referrer_without_type", "bad_timestamp",
                      "missing_required", "ragged_short"],
    "warm_intro_asks": ["ragged_short", "invalid_enum", "identical_duplicate", "conflicting_duplicate",
                        "bad_timestamp", "missing_required", "bad_utf8", "ragged_extra"],
    "nps_responses": ["score_out_of_range", "ragged_extra", "identical_duplicate", "conflicting_duplicate",
                      "bad_timestamp", "missing_required", "bad_utf8", "ragged_short"],
    "qbr_notes": ["not_json", "identical_duplicate", "invalid_enum", "conflicting_duplicate", "bad_date",
                  "missing_required", "bad_utf8"],
}
RAW_ONLY_KINDS = {"ragged_extra", "ragged_short", "bad_utf8", "not_json"}  # not expressible in Parquet

MARK_PLUS = "__RAGGED_PLUS__"
MARK_MINUS = "__RAGGED_MINUS__"
MARK_UTF8 = "__BAD_UTF8__"
BAD_UTF8_BYTES = "M\u00fcller \u00e9quipe".encode("latin-1")  # Windows-1252 bytes: not UTF-8

# --------------------------------------------------------------------------------------------------
# vocabularies
# --------------------------------------------------------------------------------------------------
# the contract's enums, from the source models (the generator indexes them by position)
TIERS = list(schemas.ACCOUNT_TIERS)
LIFECYCLE = list(schemas.LIFECYCLE_STAGES)
PARTNER_TYPES = list(schemas.PARTNER_TYPES)
PARTNER_TIERS = list(schemas.PARTNER_TIERS)
STAGES = list(schemas.OPPORTUNITY_STAGES)
LEAD_SOURCES = list(schemas.LEAD_SOURCES)
REF_TYPES = list(schemas.REFERRAL_SOURCE_TYPES)
TRIGGERS = list(schemas.TRIGGER_EVENTS)
OUTCOMES = list(schemas.ASK_OUTCOMES)
FORMATS = list(schemas.QBR_FORMATS)
STATUSES = list(schemas.QBR_STATUSES)

VERTICALS = ["SaaS", "Fintech", "Healthcare", "Manufacturing", "Retail", "Education", "Public Sector",
             "Media & Entertainment", "Logistics", "Energy", "Insurance", "Biotech"]
CSMS = ["Priya Raman", "José Álvarez", "Zoë Kowalski", "Søren Lund", "Aiko Tanaka", "Marcus Bell",
        "Fatima Zahra", "Liam O'Connor", "Chloé Dubois", "Noah Fischer", "Ana Sousa", "李娜",
        "Grace Mensah", "Mateo Rossi", "Hannah Lee", "Ravi Shah", "Olga Petrova", "Tomás Ortega",
        "Emily Chen", "Kwame Asante"]
REPS = ["Sam Carter", "Jordan Blake", "Maya Patel", "Lucas Meyer", "Elena García", "Ethan Brooks",
        "Nadia Karim", "Oliver Grant", "Sofia Marino", "Daniel Kim", "Isabelle Martin", "Kenji Watanabe",
        "Rachel Adams", "Victor Nguyen", "Amara Okafor", "Björn Nilsson", "Leah Cohen", "Diego Fernández",
        "Chris Walker", "Yasmin Haddad", "Peter Novak", "Anika Jansen"]
NAME_A = ["Acme", "Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay",
          "Soylent", "Tyrell", "Cyberdyne", "Aperture", "Wonka", "Gringotts", "Oscorp", "Massive", "Blue Sky",
          "Red Rock", "Silverline", "Evergreen", "Bluebird", "Pinnacle", "Summit", "Horizon", "Meridian",
          "Nimbus", "Quantum", "Vertex", "Zenith", "Atlas", "Orion", "Polaris", "Helix", "Cobalt", "Granite",
          "Juniper", "Maple", "Cedar", "Harbor", "Lighthouse", "Keystone", "Crescent", "Falcon", "Kestrel",
          "Müller", "Société Générale d'Ingénierie", "Østfold", "Zürich", "São Paulo", "Kraków", "Łódź",
          "東京データ", "北京", "Café Olé", "Nordlys", "Ελληνική", "Škoda", "Ångström", "Dvořák",
          'Northwind "Labs"', "O'Brien & Sons", "Smith, Jones", "Lambda", "Sigma", "Delta", "Kappa"]
NAME_B = ["Analytics", "Logistics", "Health", "Bank", "Insurance", "Foods", "Robotics", "Media", "Energy",
          "Telecom", "Software", "Systems", "Labs", "Capital", "Retail", "Pharma", "Motors", "Airlines",
          "Learning", "Cloud", "Security", "Payments", "Biotech", "Studios", "Networks", "Foundry",
          "Materials", "Holdings", "Industries", "Consulting"]
NAME_C = ["", "", "", " Inc.", ", Inc.", " LLC", " GmbH", " AG", " Ltd", " S.A.", " SAS", " B.V.", " Oy",
          " K.K.", " Pty Ltd", " plc", " Group"]
PARTNER_SUFFIX = ["Partners", "Consulting", "Solutions", "Advisory", "Integrators", "Digital", "Group",
                  "Collective", "& Co.", "Technologies"]
ADVISORS = ["Dana Whitfield", "Ingrid Solberg", "Raúl Jiménez", "Mei Lin", "Graham Holt", "Adaeze Obi",
            "Tobias Krüger", "Nora Quinn", "Hiroshi Sato", "Leila Farahani"]
MODIFIED_BY = ["integration-user", "salesforce-sync", "Sam Carter", "RevOps Bot", "admin@corp.example",
               "Zoë Kowalski"]

NPS_COMMENTS = {
    "promoter": [
        "Great product, fast support.", "Love the dashboards, the team uses them daily.",
        "Support is excellent; onboarding was smooth.", "Best vendor we work with, hands down!",
        "Très bon produit, équipe réactive.", "サポートがとても丁寧です。", "10/10 would recommend 🚀",
        'The "insights" view alone pays for itself.', "Reliable, fast, and the roadmap is solid.",
        "Rollout went well.\nThe API docs could be better, but overall great.",
    ],
    "passive": [
        "Good, but pricing is steep.", "Solid product; reporting could be more flexible.",
        "Works fine, nothing special.", "Okay overall, some performance issues last month.",
        "Decent, though SSO setup was painful.", "Gut, aber die Preise sind hoch.",
        'Support said "next release" three times, still waiting.',
    ],
    "detractor": [
        "Too many outages this quarter.", "Support is slow, tickets take days.",
        "Missing features we were promised, frustrating.", "Considering alternatives, pricing too high.",
        "Data sync broke twice; lost trust.", "Interface is confusing for new users 😕",
        "Migration was a mess.\nStill cleaning up duplicates.",
    ],
}

# QBR prose ----------------------------------------------------------------------------------------
CONTACTS = ["Sam", "Priya", "Jürgen", "Aisha", "Tom", "Mei", "Lucía", "Olu", "Karen", "Raj", "Chloé",
            "Björn", "Yuki", "Fatima", "Dave"]
COMPANIES = ["Acme", "Globex", "Initech", "Hooli", "Vandelay", "Umbrella", "Stark Industries", "Wonka",
             "Müller Logistik", "東京データ", "Northwind", "Pinnacle Health"]
ROLES = ["CFO", "CIO", "VP of Sales", "Head of Ops", "CTO", "COO", "VP Marketing", "Director of IT"]

OPENERS = [
    "Quarterly review with {c} and the ops team.", "QBR held with {c} ({r}) and two analysts.",
    "Met {c} and the {r} for the quarterly business review.", "Short QBR, {c} joined late from another call.",
    "Good energy in the room; {c} ran the agenda.", "Executive QBR with the {r} and {c}.",
    "Reviewed Q{q} goals with {c}.", "Kick-off of the review with {c}, who is new in the {r} role.",
    "{c} walked us through their planning for next year.", "Annual planning session folded into the QBR with {c}.",
    "QBR mostly focused on adoption numbers; {c} and the {r} attended.", "Hybrid session: {c} on site, the {r} dialled in.",
    "Revue trimestrielle avec {c}, très constructive.", "{c}さんと四半期レビューを実施。",
    "Catch-up with {c} after the reorg.", "Renewal-year QBR with {c} and procurement.",
    "QBR with {c}; the {r} dropped in for the last 15 minutes.", "Second attempt at this QBR, {c} had rescheduled twice.",
    "Met the new {r} for the first time, {c} introduced the team.", "Went through the health scorecard with {c}.",
    "Quarterly sync with {c} — agenda: adoption, roadmap, renewal.", "Value review with {c} and finance.",
    "{c} opened with a recap of their wins this quarter.", "Check-in QBR with {c}; low attendance on their side.",
    "Long session with {c}, lots of questions about the roadmap.", "QBR at their office in Zürich with {c}.",
    "Ran the QBR deck v3 with {c}; good discussion.", "Met {c} over lunch before the formal QBR.",
    "QBR with {c}. Agenda slipped, but we covered the essentials.", "Review with {c} and the platform team.",
    "First QBR since go-live; {c} and the {r} attended.", "{c} asked to keep it to 30 minutes.",
    "Joint QBR with our partner and {c}.", "Regular QBR, {c} plus three power users.",
    "QBR rescheduled from last week; {c} apologised for the delay.", "Visited {c} on site — café was excellent ☕.",
    "Strategic review with the {r}; {c} coordinated.", "Mid-year review with {c} and legal.",
    "Met {c} at the regional office in São Paulo.", "Formal QBR with the steering committee, chaired by {c}.",
]
TOPICS = [
    "Adoption is up {p}% quarter over quarter, driven by the reporting module.",
    "Dashboards are now used by {n} teams, up from {m}.", "They rolled out SSO across all regions.",
    "Usage of the API doubled after the webhook release.", "Data quality issues from the legacy CRM are mostly resolved.",
    "The forecasting add-on is in pilot with the EMEA team.", "They want more granular permissions for contractors.",
    "Mobile usage is low; field teams still prefer spreadsheets.", "Migration to the new workspace is {p}% complete.",
    "Training sessions were well attended, around {n} people.", "They asked about the roadmap for AI summaries.",
    "Integration with their ERP went live last month.", "License utilisation is at {p}%.",
    "Support tickets dropped by half since onboarding ended.", "They are evaluating the analytics tier.",
    "Time to insight went from days to hours, per their ops lead.", "Reviewed the custom objects and the naming conventions.",
    "Their admin team grew from {m} to {n} people.", "They consolidated three tools into our platform.",
    "Renewal is in {n} weeks; procurement wants a multi-year option.", "Discussed the pricing change and its impact on seats.",
    "Walked through the new audit log and the retention settings.", "Sandbox environment requested for the Q{q} release.",
    "They built {n} automated workflows this quarter.", "Exec sponsor is happy with the ROI story so far.",
    "Looked at benchmark data against peers in their vertical.", "Performance of the search index is still a sore point.",
    "L'équipe finance utilise maintenant les rapports mensuels.", "データ連携は順調に進んでいる。",
    "Great progress on the onboarding checklist 🎉.", "Reporting latency improved after the index rebuild.",
    "They want a data residency option in the EU.", "Walked through usage heatmaps by department.",
    "Their CFO wants a cleaner cost allocation per business unit.", "Discussed the sunset of the v1 API.",
    "They are hiring a dedicated admin next quarter.", "Several power users asked for keyboard shortcuts.",
    "They moved the pilot team to production licences.", "Reviewed the service credits from the incident in Q{q}.",
    "Budget for next year is approved, pending board sign-off.",
]
RISKS = [
    "Risk: the champion may leave after the reorg.", "Concern about the outage on the 14th; RCA shared.",
    "Budget freeze could delay the expansion.", "Competitor pitched them a cheaper bundle last month.",
    "Low adoption in the APAC team remains a risk.", "Procurement is pushing for a 15% discount.",
    "They flagged slow response times on P2 tickets.", "Security review of the new module is still pending.",
    "New CIO is reviewing all vendor contracts.", "Data export limits are a blocker for the BI team.",
    "Renewal risk is medium; usage flat for two quarters.", "They are unhappy with the pricing of extra seats.",
    "Legal has questions about the DPA update.", "Champion is stretched thin, covering two roles.",
    "Some frustration with the UI changes — «trop de clics».", "Integration with their HRIS keeps failing nightly.",
    "Health score dropped to amber after the incident.", "Their team is still on the deprecated connector.",
    "A merger is rumoured; could change the buying committee.", "Seats are over-provisioned by about 20%.",
]
NEXT_STEPS = [
    "Next steps: send the usage report and schedule admin training.", "Next steps: follow up on the SSO ticket by Friday.",
    "Action items: pricing proposal for multi-year, roadmap deck.", "Next: technical deep-dive with their architects.",
    "Follow-up call booked for next month.", "Owner to share the renewal quote before the end of Q{q}.",
    "Next steps: success plan refresh and exec sponsor check-in.", "We will pilot the analytics tier with two teams.",
    "Action: loop in support leadership on the P2 backlog.", "Next: workshop on workflow automation.",
    "Send recap email and updated success plan.", "Plan a health check in six weeks.",
    "Next steps: align on KPIs for the expansion business case.", "Action: confirm data residency timeline.",
    "Book onboarding for the new admin.", "Share the benchmark report with the CFO.",
    "\nNext steps: renewal paperwork, then expansion scoping.", "\nTo do: fix the nightly sync, update the RCA.",
    "Schedule the next QBR for early next quarter.", "Prepare a seat right-sizing proposal.",
]
POSITIVE = [  # genuine referral signals
    "{c} offered to introduce us to the {r} at {co}.", "Happy to be a reference once the migration is done.",
    "{c} already referred us to two peers in their network.", "They agreed to a case study for next quarter.",
    "{c} is willing to take reference calls with prospects in their vertical.",
    "{c} said she would gladly recommend us to {co}.", "{c} said he would happily recommend us to the {r} at {co}.",
    "They already introduced us to their {r}'s former team at {co}.", "Open to a peer call with prospects, as long as it is scheduled via {c}.",
    "{c} volunteered to speak at our customer event and be a reference.", "Agreed to join the customer advisory board and act as a reference.",
    "{c} will intro us to the {r} at {co} next week.", "They referred {co} to us last month, intro call already booked.",
    "Happy to refer us once the rollout is complete.", "{c} offered a warm intro to a sister company.",
    "Confirmed they will be a reference for the enterprise deal with {co}.", "{c} agreed to a joint webinar and a written case study.",
    "{c} introduced us to the {r} at {co} by email during the meeting.",
    "Willing to recommend us on G2 and to peers at the user group.", "{c}: « on vous recommandera volontiers » — happy to refer.",
    "Said they would connect us with two other business units.", "{c} is keen to be a reference customer after renewal.",
    "Offered to host a peer call with prospects in healthcare.", "They already recommended us to {co}; {c} cc'd us on the thread.",
]
DISTRACTORS = [  # referral-ish words, no genuine signal
    "Not ready to refer yet; want to see the Q{q} results first.", "{c} might be open to a reference later in the year.",
    "We asked whether they'd refer us; no answer yet.", "We pointed them to our partner for the integration.",
    "Please refer to ticket 4411 for the sync issue.", "See the referenced RCA document for details.",
    "{c} declined to introduce us to the {r} at {co}.", "Maybe a case study next year, too early to tell.",
    "Asked about reference calls; {c} said not this quarter.", "They love the product but have a policy against references.",
    "We referred them to support for the permissions bug.", "Refer to the attached deck for the roadmap items.",
    "Great feedback on the dashboards, the team is very happy.", "{c} said the product is excellent.",
    "Could they recommend us? Unclear, we did not get to it.", "Introduced {c} to our new support lead.",
    "We recommended they upgrade to the analytics tier.", "{c} was referred to the billing team for the invoice question.",
    "Legal does not allow them to be a public reference.", "Would they introduce us to {co}? Will ask next time.",
    "The referral program was mentioned but they showed no interest.", "Not willing to do a case study at this point.",
    "Intro to the CFO is not possible right now, per {c}.", "Maybe they could refer us to their parent company, maybe not.",
    "They introduced a new approval workflow internally.", "Referencing the SOW, the scope for phase 2 is unchanged.",
    "{c} recommended we fix the export limits before anything else.", "Reference architecture review is scheduled.",
]

TAGS_REFERRAL = ["referral_intent", "Referral_Intent", " referral_intent ", "REFERRAL_INTENT"]
TAGS_OTHER = ["renewal_risk", "expansion", "exec_sponsor", "product_feedback", "case_study_candidate",
              "health_green", "health_amber", "health_red", "champion_change", "training", "referral",
              "no_referral_intent", "upsell", "Pricing"]


# --------------------------------------------------------------------------------------------------
# small vectorised helpers
# --------------------------------------------------------------------------------------------------
def _i32(idx) -> pa.Array:
    return pa.array(np.asarray(idx, dtype=np.int32))


def _take(pool: list, idx) -> pa.Array:
    return pa.array(pool, pa.string()).take(_i32(idx))


def _cat(rng, n, probs) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    return np.searchsorted(np.cumsum(p / p.sum()), rng.random(n), side="right").clip(0, len(p) - 1).astype(np.int16)


def _title(v: str) -> str:
    return "_".join(w.capitalize() for w in v.split("_"))


def _enum(rng, codes: np.ndarray, values: list[str], messy: float = 0.08) -> pa.Array:
    """Enum strings with some valid messiness: Title_Case, UPPER, padded."""
    pool = []
    for v in values:
        pool += [v, _title(v), v.upper(), f" {v} ", f" {_title(v)}  "]
    var = np.where(rng.random(len(codes)) < messy, rng.integers(1, 5, len(codes)), 0)
    idx = codes.astype(np.int32) * 5 + var
    out = _take(pool, np.where(codes < 0, 0, idx))
    if (codes < 0).any():
        out = pc.if_else(pa.array(codes < 0), pa.scalar(None, pa.string()), out)
    return out


def _ids(prefix: str, nums: np.ndarray, width: int) -> pa.Array:
    s = pc.cast(pa.array(np.asarray(nums, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(s, width=width, padding="0"), "")


def _null_where(arr: pa.Array, mask: np.ndarray) -> pa.Array:
    if not mask.any():
        return arr
    return pc.if_else(pa.array(mask), pa.scalar(None, arr.type), arr)


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    out = pc.cast(pa.array(np.asarray(days, dtype=np.int64).astype("datetime64[D]")), pa.string())
    return _null_where(out, null) if null is not None else out


OFFSETS_MIN = [-480, -300, -180, -120, 0, 60, 120, 330, 540]
OFFSET_STR = [f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in OFFSETS_MIN]
# styles: 0 "…T…Z", 1 "… …" (no offset), 2 "…T…" (no offset), 3 "…T…±hh:mm", 4 bare date
TS_STYLE_P = [0.38, 0.27, 0.12, 0.19, 0.04]


def _ts_styles(rng, n):
    style = _cat(rng, n, TS_STYLE_P)
    off = rng.integers(0, len(OFFSETS_MIN), n)
    return style, off


def _fmt_ts(secs: np.ndarray, style: np.ndarray, off: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Format UTC epoch seconds as messy ISO 8601 text (value preserved; bare dates must be midnight)."""
    offs = np.where(style == 3, np.asarray(OFFSETS_MIN)[off] * 60, 0)
    local = (secs + offs).astype("datetime64[s]")
    date = pc.cast(pa.array(local.astype("datetime64[D]")), pa.string())
    tod = pc.utf8_slice_codeunits(pc.cast(pa.array(local), pa.string()), 11, 19)
    bare = style == 4
    sep = _take(["T", " ", "T", "T", ""], style)
    if bare.any():
        tod = pc.if_else(pa.array(bare), "", tod)
    suf = _take(["", "Z"] + OFFSET_STR, np.where(style == 0, 1, np.where(style == 3, 2 + off, 0)))
    out = pc.binary_join_element_wise(date, sep, tod, suf, "")
    return _null_where(out, null) if null is not None else out


def _fmt_ts_plain(secs: np.ndarray) -> pa.Array:
    n = len(secs)
    return _fmt_ts(secs, np.zeros(n, np.int16), np.zeros(n, np.int64))


def _set(cols: dict, name: str, idx: np.ndarray, values) -> None:
    """Replace cols[name] at row positions idx (any order) by values."""
    if len(idx) == 0:
        return
    arr = cols[name]
    order = np.argsort(idx, kind="stable")
    idx = np.asarray(idx)[order]
    vals = pa.array(values, type=arr.type) if not isinstance(values, (pa.Array, pa.ChunkedArray)) else values
    vals = vals.take(_i32(order))
    mask = np.zeros(len(arr), bool)
    mask[idx] = True
    cols[name] = pc.replace_with_mask(arr, pa.array(mask), vals.cast(arr.type))


def _weighted_pick(rng, cdf: np.ndarray, n: int) -> np.ndarray:
    return np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right").clip(0, len(cdf) - 1)


# --------------------------------------------------------------------------------------------------
# the "world": accounts and partners, kept in memory as numeric arrays
# --------------------------------------------------------------------------------------------------
class World:
    def __init__(self, preset: Preset, seed: int):
        rng = np.random.default_rng([seed, 1000])
        n = preset.accounts
        self.n = n
        self.start_s = int(np.datetime64(preset.start, "s").astype(np.int64))
        self.start_d = self.start_s // DAY
        self.end_d = END_S // DAY
        self.acc_width = max(6, len(str(2 * n)))
        self.tier = _cat(rng, n, [0.09, 0.21, 0.34, 0.36])
        self.vertical = np.where(rng.random(n) < 0.1, -1, rng.integers(0, len(VERTICALS), n)).astype(np.int16)
        self.adv = rng.normal(0, 1, n).astype(np.float32)
        is_cust = rng.random(n) < 0.74
        lo_d = int(np.datetime64("2019-01-01", "D").astype(np.int64))
        # customers join over time; more recent joiners slightly more common
        since = (lo_d + (self.end_d - 20 - lo_d) * rng.random(n) ** 0.8).astype(np.int64)
        churn = since + rng.integers(150, 1600, n)
        churned = is_cust & (rng.random(n) < 0.2) & (churn < self.end_d)
        self.since = np.where(is_cust, since, -1)
        self.churn = np.where(churned, churn, -1)
        self.is_cust = is_cust
        lc = np.where(rng.random(n) < 0.4, 2, np.where(rng.random(n) < 0.5, 3, 4))
        lc = np.where(is_cust & (self.end_d - since < 120), 1, lc)
        lc = np.where(churned, 5, lc)
        self.lifecycle = np.where(is_cust, lc, 0).astype(np.int16)
        self.csm = np.where(rng.random(n) < np.where(is_cust, 0.93, 0.2),
                            rng.integers(0, len(CSMS), n), -1).astype(np.int16)
        # active window within [start, end): used to place NPS, asks and QBRs
        w0 = np.maximum(self.since, self.start_d)
        w1 = np.where(self.churn >= 0, np.minimum(self.churn + 1, self.end_d), self.end_d)
        self.w0, self.w1 = w0, w1
        wlen = np.where(is_cust, np.maximum(w1 - w0, 0), 0).astype(np.float64)
        self.active_cdf = np.cumsum(wlen * np.exp(0.35 * self.adv))
        self.cust_idx = np.flatnonzero(is_cust)
        strat = np.flatnonzero(is_cust & (self.tier == 0))
        self.strat_cust_idx = strat if len(strat) else self.cust_idx
        # partners
        m = preset.partners
        self.np_ = m
        self.p_width = max(5, len(str(m)))
        self.p_type = _cat(rng, m, [0.36, 0.3, 0.2, 0.14])
        self.p_tier = _cat(rng, m, [0.12, 0.22, 0.3, 0.36])
        if m >= 16:  # every type x tier combination present
            combos = np.arange(16)
            self.p_type[:16] = combos // 4
            self.p_tier[:16] = combos % 4
        w = np.array([4.0, 2.5, 1.5, 1.0])[self.p_tier] * np.where(self.p_type == 3, 1.6, 1.0)
        self.p_cdf = np.cumsum(w)

    def acc_ids(self, idx):
        return _ids("ACC-", np.asarray(idx) + 1, self.acc_width)

    def orphan_ids(self, rng, k):
        return _ids("ACC-", self.n + 1 + rng.integers(0, self.n + 1, k), self.acc_width)

    def pick_active(self, rng, k):
        """Accounts weighted by active-window length (and advocacy); a day inside that window."""
        a = _weighted_pick(rng, self.active_cdf, k)
        day = self.w0[a] + (rng.random(k) * np.maximum(self.w1[a] - self.w0[a], 1)).astype(np.int64)
        return a, day


# --------------------------------------------------------------------------------------------------
# per-source chunk builders: return (cols, aux); cols are pyarrow arrays in output order
# --------------------------------------------------------------------------------------------------
def _names(rng, n, a_pool=NAME_A, b_pool=NAME_B, c_pool=NAME_C):
    a = _take(a_pool, rng.integers(0, len(a_pool), n))
    b = _take(b_pool, rng.integers(0, len(b_pool), n))
    c = _take(c_pool, rng.integers(0, len(c_pool), n))
    return pc.binary_join_element_wise(a, " ", b, c, "")


def build_accounts(w: World, rng, lo, hi):
    n = hi - lo
    sl = slice(lo, hi)
    since, churn = w.since[sl], w.churn[sl]
    vert = w.vertical[sl]
    vpool = VERTICALS + [""]
    vert_arr = _take(vpool, np.where(vert < 0, len(VERTICALS), vert))
    vert_arr = _null_where(vert_arr, (vert < 0) & (rng.random(n) < 0.6))  # some "" quoted, most null
    csm = w.csm[sl]
    cols = {
        "account_id": w.acc_ids(np.arange(lo, hi)),
        "account_name": _names(rng, n),
        "crm_internal_id": _ids("0015g0000", rng.integers(0, 10**9, n), 9),
        "account_tier": _enum(rng, w.tier[sl], TIERS),
        "vertical": vert_arr,
        "csm_owner": _null_where(_take(CSMS, np.maximum(csm, 0)), csm < 0),
        "lifecycle_stage": _enum(rng, w.lifecycle[sl], LIFECYCLE),
        "customer_since": _dates(np.maximum(since, 0), since < 0),
        "churned_on": _dates(np.maximum(churn, 0), churn < 0),
        "last_modified_by": _take(MODIFIED_BY, rng.integers(0, len(MODIFIED_BY), n)),
    }
    return cols, {"since": since, "churn": churn, "tier": w.tier[sl]}


def build_partners(w: World, rng, lo, hi):
    n = hi - lo
    t = w.p_type[lo:hi]
    names = pc.binary_join_element_wise(_take(NAME_A, rng.integers(0, len(NAME_A), n)), " ",
                                        _take(PARTNER_SUFFIX, rng.integers(0, len(PARTNER_SUFFIX), n)), "")
    adv_names = pc.binary_join_element_wise(_take(ADVISORS, rng.integers(0, len(ADVISORS), n)), " (Advisor)", "")
    cols = {
        "partner_id": _ids("PRT-", np.arange(lo, hi) + 1, w.p_width),
        "partner_name": pc.if_else(pa.array(t == 3), adv_names, names),
        "partner_type": _enum(rng, t, PARTNER_TYPES),
        "partner_tier": _enum(rng, w.p_tier[lo:hi], PARTNER_TIERS),
    }
    return cols, {}


OPP_ORDER = ["opportunity_id", "created_at", "stage", "account_id", "amount", "owner", "lead_source",
             "referral_source_type", "referrer_id", "closed_at", "vertical", "crm_internal_id",
             "last_modified_by"]


def build_opportunities(w: World, rng, lo, hi):
    n = hi - lo
    created = w.start_s + (rng.random(n) ** 0.9 * (END_S - w.start_s)).astype(np.int64)
    created -= created % 60 * (rng.random(n) < 0.5)  # half on whole minutes
    acc = rng.integers(0, w.n, n)
    orphan = rng.random(n) < 0.01
    acc_ids = w.acc_ids(acc)
    if orphan.any():
        _tmp = {"a": acc_ids}
        _set(_tmp, "a", np.flatnonzero(orphan), w.orphan_ids(rng, int(orphan.sum())))
        acc_ids = _tmp["a"]
    # referrals
    rtype = _cat(rng, n, [0.19, 0.15, 0.05, 0.61]).astype(np.int16)
    rtype = np.where(rtype == 3, -1, rtype)
    is_c, is_p, is_e = rtype == 0, rtype == 1, rtype == 2
    ref_acc = np.where(rng.random(n) < 0.4, w.strat_cust_idx[rng.integers(0, len(w.strat_cust_idx), n)],
                       w.cust_idx[rng.integers(0, len(w.cust_idx), n)])
    ref_part = _weighted_pick(rng, w.p_cdf, n)
    unresolved = is_c & (rng.random(n) < 0.03)
    referrer = pc.if_else(pa.array(is_c), w.acc_ids(ref_acc),
                          pc.if_else(pa.array(is_p), _ids("PRT-", ref_part + 1, w.p_width),
                                     _ids("EMP-", rng.integers(1, 900, n), 4)))
    if unresolved.any():
        k = int(unresolved.sum())
        bogus = pc.if_else(pa.array(rng.random(k) < 0.5), w.orphan_ids(rng, k),
                           _ids("0015g0000", rng.integers(0, 10**9, k), 9))
        _tmp = {"r": referrer}
        _set(_tmp, "r", np.flatnonzero(unresolved), bogus)
        referrer = _tmp["r"]
    referrer = _null_where(referrer, rtype < 0)
    strategic = (is_c & ~unresolved & (w.tier[ref_acc] == 0)) | (is_p & ((w.p_tier[ref_part] <= 1) | (w.p_type[ref_part] == 3)))
    # lead source, descriptive only
    ls_ref = np.where(rng.random(n) < 0.85, 0, _cat(rng, n, [0, 0.3, 0.2, 0.3, 0.1, 0.1]))
    ls_part = np.where(rng.random(n) < 0.8, 4, np.where(rng.random(n) < 0.7, 0, 5))
    ls_none = _cat(rng, n, [0.03, 0.4, 0.3, 0.14, 0.05, 0.08])
    lead = np.where(is_c | is_e, ls_ref, np.where(is_p, ls_part, ls_none)).astype(np.int16)
    # stage / closing
    dur = np.exp(rng.normal(np.log(40 * DAY), 0.9, n)).astype(np.int64) + 3600
    close = created + dur
    stale = rng.random(n) < 0.04
    closed = (close < END_S) & ~stale
    p_win = np.where(strategic, 0.46, np.where(rtype >= 0, 0.36, 0.22)) + 0.05 * (w.tier[acc] <= 1)
    won = rng.random(n) < p_win
    frac = np.clip((END_S - created) / np.maximum(dur, 1), 0, 1)
    open_stage = np.clip((frac * 4 + rng.normal(0, 0.7, n)).astype(np.int64), 0, 3)
    stage = np.where(closed, np.where(won, 4, 5), open_stage).astype(np.int16)
    # timestamp styles; bare dates are midnight values
    cst, coff = _ts_styles(rng, n)
    created = np.where(cst == 4, created - created % DAY, created)
    kst, koff = _ts_styles(rng, n)
    close_bare = close - close % DAY
    kst = np.where((kst == 4) & (close_bare < created), 0, kst)
    close = np.where(kst == 4, close_bare, close)
    amount = np.round(np.exp(rng.normal(np.log([90_000, 45_000, 18_000, 7_000])[w.tier[acc]], 0.7)), -1)
    amount = np.where(rng.random(n) < 0.3, np.round(amount, -3), amount + rng.integers(0, 100, n) / 100)
    amt_null = rng.random(n) < 0.05
    owner = rng.integers(0, len(REPS), n)
    vert = np.where(orphan, rng.integers(0, len(VERTICALS), n), w.vertical[acc])
    vert = np.where(rng.random(n) < 0.06, -1, vert)
    cols = {
        "opportunity_id": _ids("OPP-", np.arange(lo, hi) + 1, max(8, len(str(hi)))),
        "created_at": _fmt_ts(created, cst, coff),
        "stage": _enum(rng, stage, STAGES),
        "account_id": acc_ids,
        "amount": pa.array(amount, mask=amt_null).cast(pa.decimal128(14, 2)),
        "owner": _null_where(_take(REPS, owner), rng.random(n) < 0.04),
        "lead_source": _enum(rng, lead, LEAD_SOURCES),
        "referral_source_type": _enum(rng, rtype, REF_TYPES),
        "referrer_id": referrer,
        "closed_at": _fmt_ts(close, kst, koff, ~closed),
        "vertical": _null_where(_take(VERTICALS, np.maximum(vert, 0)), vert < 0),
        "crm_internal_id": _ids("0065g0000", rng.integers(0, 10**9, n), 9),
        "last_modified_by": _take(MODIFIED_BY, rng.integers(0, len(MODIFIED_BY), n)),
    }
    return cols, {"created": created, "closed": closed, "rtype": rtype, "stage": stage, "amount": amount}


def build_asks(w: World, rng, lo, hi):
    n = hi - lo
    a, day = w.pick_active(rng, n)
    secs = day * DAY + rng.integers(7 * 3600, 20 * 3600, n)
    secs = np.minimum(secs, END_S - 60)
    orphan = rng.random(n) < 0.01
    acc = w.acc_ids(a)
    if orphan.any():
        _tmp = {"a": acc}
        _set(_tmp, "a", np.flatnonzero(orphan), w.orphan_ids(rng, int(orphan.sum())))
        acc = _tmp["a"]
    onboarding = (day - w.since[a]) < 120
    trig = np.where(onboarding & (rng.random(n) < 0.6), 3, _cat(rng, n, [0.32, 0.25, 0.2, 0.08, 0.15])).astype(np.int16)
    who = rng.random(n)
    csm = w.csm[a]
    asked_by = pc.if_else(pa.array((who < 0.62) & (csm >= 0)), _take(CSMS, np.maximum(csm, 0)),
                          _take(REPS, rng.integers(0, len(REPS), n)))
    asked_by = _null_where(asked_by, who > 0.88)
    outcome = _cat(rng, n, [0.33, 0.24, 0.2, 0.23]).astype(np.int16)
    outcome = np.where(outcome == 3, -1, outcome)
    st, off = _ts_styles(rng, n)
    secs = np.where(st == 4, secs - secs % DAY, secs)
    cols = {
        "ask_id": _ids("ASK-", np.arange(lo, hi) + 1, max(7, len(str(hi)))),
        "account_id": acc,
        "asked_by": asked_by,
        "trigger_event": _enum(rng, trig, TRIGGERS),
        "asked_at": _fmt_ts(secs, st, off),
        "outcome": _enum(rng, outcome, OUTCOMES),
    }
    return cols, {"secs": secs}


def build_nps(w: World, rng, lo, hi):
    n = hi - lo
    a, day = w.pick_active(rng, n)
    other = rng.random(n) < 0.03  # a few from prospects / churned accounts: still valid rows
    a = np.where(other, rng.integers(0, w.n, n), a)
    day = np.where(other, w.start_d + rng.integers(0, w.end_d - w.start_d, n), day)
    secs = np.minimum(day * DAY + rng.integers(0, DAY, n), END_S - 1)
    score = np.clip(np.round(7.6 + 1.6 * w.adv[a] + rng.normal(0, 1.5, n)), 0, 10).astype(np.int64)
    band = np.where(score >= 9, 0, np.where(score >= 7, 1, 2))
    has_c = rng.random(n) < 0.35
    pools = [NPS_COMMENTS["promoter"], NPS_COMMENTS["passive"], NPS_COMMENTS["detractor"]]
    flat = pools[0] + pools[1] + pools[2]
    base = np.array([0, len(pools[0]), len(pools[0]) + len(pools[1])])
    sizes = np.array([len(p) for p in pools])
    cidx = base[band] + (rng.random(n) * sizes[band]).astype(np.int64)
    st, off = _ts_styles(rng, n)
    secs = np.where(st == 4, secs - secs % DAY, secs)
    cols = {
        "response_id": _ids("NPS-", np.arange(lo, hi) + 1, max(8, len(str(hi)))),
        "account_id": w.acc_ids(a),
        "respondent_id": _null_where(_ids("CNT-", rng.integers(1, max(10 * w.n, 1000), n), 7), rng.random(n) < 0.15),
        "score": pa.array(score),
        "comment": _null_where(_take(flat, cidx), ~has_c),
        "responded_at": _fmt_ts(secs, st, off),
    }
    return cols, {"secs": secs, "score": score}


class NotePools:
    """Fragment pools for QBR prose, expanded once (deterministically) from the templates."""

    def __init__(self):
        r = np.random.default_rng(12345)

        def expand(templates, k=3):
            out = []
            for t in templates:
                for _ in range(k if "{" in t else 1):
                    out.append(t.format(c=CONTACTS[r.integers(len(CONTACTS))], r=ROLES[r.integers(len(ROLES))],
                                        co=COMPANIES[r.integers(len(COMPANIES))], q=r.integers(1, 5),
                                        p=r.integers(5, 60), n=r.integers(4, 40), m=r.integers(1, 4)))
            return out

        self.groups = {
            "opener": expand(OPENERS), "body": expand(TOPICS) + expand(RISKS) + expand(NEXT_STEPS),
            "pos": expand(POSITIVE, 4), "neg": expand(DISTRACTORS, 3),
        }
        flat, self.base = [""], {}
        for g, items in self.groups.items():
            self.base[g] = len(flat)
            flat += items
        self.raw = [s + " " if s else "" for s in flat]
        self.json = [json.dumps(s, ensure_ascii=False)[1:-1] for s in self.raw]
        self.lens = np.array([len(s) for s in self.raw], dtype=np.int64)

    def pick(self, rng, g, n):
        return self.base[g] + rng.integers(0, len(self.groups[g]), n)


_NOTE_POOLS: NotePools | None = None
TAG_SETS_REF = [[t] for t in TAGS_REFERRAL] + [["expansion", "referral_intent"], ["referral_intent", "exec_sponsor"],
                                              ["health_green", " Referral_Intent"], ["case_study_candidate", "referral_intent"]]
TAG_SETS_OTHER = [[], [], [], ["no_referral_intent"], ["renewal_risk"], ["expansion"], ["health_green"],
                  ["health_amber", "champion_change"], ["product_feedback"], ["referral"], ["case_study_candidate"],
                  ["No_Referral_Intent", "health_red"], ["upsell", "Pricing"], ["training"], ["exec_sponsor"]]


def build_qbrs(w: World, rng, lo, hi, notes_len):
    global _NOTE_POOLS
    if _NOTE_POOLS is None:
        _NOTE_POOLS = NotePools()
    P = _NOTE_POOLS
    n = hi - lo
    a, day = w.pick_active(rng, n)
    st = _cat(rng, n, [0.84, 0.11, 0.05]).astype(np.int16)
    upcoming = rng.random(n) < 0.03  # scheduled in the next two months
    day = np.where(upcoming, w.end_d - 10 + rng.integers(0, 70, n), day)
    st = np.where(upcoming, 2, np.where((st == 2) & (day < w.end_d - 120) & (rng.random(n) < 0.7), 0, st)).astype(np.int16)
    fmt_ = _cat(rng, n, [0.27, 0.55, 0.18]).astype(np.int16)
    csm = np.where(rng.random(n) < 0.85, w.csm[a], np.where(rng.random(n) < 0.5, -1, rng.integers(0, len(CSMS), n)))
    # referral intent and how it shows up
    intent = rng.random(n) < 1 / (1 + np.exp(-(1.1 * w.adv[a] - 1.4)))
    mode = _cat(rng, n, [0.25, 0.45, 0.30])  # tag only, text only, both
    tagged = intent & (mode != 1)
    texted = intent & (mode != 0)
    # slots: 0 opener, ref sentence at position p in 1..3, body elsewhere
    S = 16
    idx = np.empty((n, S), dtype=np.int64)
    idx[:, 0] = P.pick(rng, "opener", n)
    for j in range(1, S):
        idx[:, j] = P.pick(rng, "body", n)
    p = rng.integers(1, 4, n)
    ref_frag = np.where(texted, P.pick(rng, "pos", n),
                        np.where(rng.random(n) < 0.62, P.pick(rng, "neg", n), P.pick(rng, "body", n)))
    idx[np.arange(n), p] = ref_frag
    extra_neg = rng.random(n) < 0.25  # a second distractor somewhere later
    q = rng.integers(4, 7, n)
    idx[np.arange(n), q] = np.where(extra_neg, P.pick(rng, "neg", n), idx[np.arange(n), q])
    lens = P.lens[idx]
    ends = np.cumsum(lens, axis=1)
    starts = ends - lens
    lo_len, hi_len = notes_len
    # cancelled / scheduled QBRs get the shortest notes the length range allows
    target = np.where(st != 0, lo_len, rng.integers(lo_len, hi_len + 1, n))
    # a fragment is kept while the text is still shorter than lo_len, or it still fits under target;
    # lengths include the trailing space that is trimmed at the end
    keep = (starts <= lo_len) | (ends <= target[:, None] + 1) | (np.arange(S)[None, :] <= p[:, None])
    keep[:, 1:] &= np.logical_and.accumulate(keep, axis=1)[:, :-1]  # contiguous prefix
    idx = np.where(keep, idx, 0)
    notes_raw = pc.utf8_rtrim_whitespace(pc.binary_join_element_wise(*[_take(P.raw, idx[:, j]) for j in range(S)], ""))
    notes_json = pc.utf8_rtrim(pc.binary_join_element_wise(*[_take(P.json, idx[:, j]) for j in range(S)], ""), characters=" ")
    notes_null = (rng.random(n) < 0.04) & ~texted
    # tags
    tref = rng.integers(0, len(TAG_SETS_REF), n)
    toth = rng.integers(0, len(TAG_SETS_OTHER), n)
    sets = TAG_SETS_REF + TAG_SETS_OTHER
    tag_idx = np.where(tagged, tref, len(TAG_SETS_REF) + toth)
    tag_state = _cat(rng, n, [0.9, 0.05, 0.05])  # 0 list, 1 null, 2 key missing
    tag_state = np.where(tagged, 0, tag_state)
    held = day
    cols = {
        "qbr_id": _ids("QBR-", np.arange(lo, hi) + 1, max(7, len(str(hi)))),
        "account_id": w.acc_ids(a),
        "held_on": _dates(held),
        "csm": _null_where(_take(CSMS, np.maximum(csm, 0)), csm < 0),
        "format": _enum(rng, fmt_, FORMATS),
        "status": _enum(rng, st, STATUSES),
        "notes": _null_where(notes_raw, notes_null),
    }
    aux = {
        "notes_json": _null_where(notes_json, notes_null),
        "tags_list": pa.array([sets[i] for i in range(len(sets))], pa.list_(pa.string())).take(_i32(tag_idx)),
        "tags_json": _take([json.dumps(s) for s in sets], tag_idx),
        "tag_state": tag_state,
        "signal": tagged | texted,  # texted rows never get null notes
        "status": st,
    }
    aux["tags_list"] = _null_where(aux["tags_list"], tag_state != 0)
    return cols, aux


BUILDERS = {
    "accounts": build_accounts, "partners": build_partners, "opportunities": build_opportunities,
    "warm_intro_asks": build_asks, "nps_responses": build_nps, "qbr_notes": build_qbrs,
}
ID_COL = {"accounts": "account_id", "partners": "partner_id", "opportunities": "opportunity_id",
          "warm_intro_asks": "ask_id", "nps_responses": "response_id", "qbr_notes": "qbr_id"}
# non-first string column for ragged markers, and a text column for bad bytes
MARK_COL = {"accounts": "vertical", "partners": "partner_name", "opportunities": "owner",
            "warm_intro_asks": "asked_by", "nps_responses": "comment", "qbr_notes": "notes"}


# --------------------------------------------------------------------------------------------------
# rule-breaking rows
# --------------------------------------------------------------------------------------------------
def _kind_counts(kinds: list[str], total: int) -> dict[str, int]:
    k = len(kinds)
    return {kd: total // k + (1 if i < total % k else 0) for i, kd in enumerate(kinds)}


def inject_bad(source, cols, aux, rng, bad_fraction, fmt, n):
    """Modify rows in place / add duplicate rows. Returns (cols, counts, order-take or None)."""
    kinds = [k for k in BAD_KINDS[source] if not (fmt == "parquet" and k in RAW_ONLY_KINDS)]
    if source == "qbr_notes" and fmt == "parquet":
        kinds = [k for k in kinds if k != "not_json"]
    total = int(round(bad_fraction * n / max(1e-9, 1 - bad_fraction))) if bad_fraction > 0 else 0
    counts = _kind_counts(kinds, total) if total else {}
    used = np.zeros(n, bool)
    done: dict[str, int] = {}

    def pick(k, eligible=None):
        el = ~used if eligible is None else (eligible & ~used)
        cand = np.flatnonzero(el)
        k = min(k, len(cand))
        sel = np.sort(rng.choice(cand, size=k, replace=False)) if k else np.array([], dtype=np.int64)
        used[sel] = True
        return sel

    def choice(pool, k):
        return [pool[i] for i in rng.integers(0, len(pool), k)]

    dup_specs = []
    for kind, k in counts.items():
        if k == 0:
            continue
        if kind in ("identical_duplicate", "conflicting_duplicate"):
            dup_specs.append((kind, k))
            continue
        sel = None
        mc = MARK_COL[source]
        if kind == "ragged_extra":
            sel = pick(k)
            _set(cols, mc, sel, [MARK_PLUS] * len(sel))
        elif kind == "ragged_short":
            sel = pick(k)
            _set(cols, mc, sel, [MARK_MINUS] * len(sel))
        elif kind == "bad_utf8":
            sel = pick(k)
            _set(cols, mc, sel, [MARK_UTF8] * len(sel))
            if source == "qbr_notes":
                _set(aux, "notes_json", sel, [MARK_UTF8] * len(sel))
        elif kind == "not_json":
            sel = pick(k)
            aux["_not_json"] = np.zeros(n, bool)
            aux["_not_json"][sel] = True
        elif kind == "invalid_enum":
            sel = pick(k)
            col, pool = {
                "accounts": ("account_tier", ["Platinum", "tier 1", "SMB-plus", "key account", "Enterprize"]),
                "partners": ("partner_tier", ["platinium", "diamond", "Gold+", "bronze"]),
                "opportunities": ("stage", ["won", "Closed Won", "closed-lost", "stage 3", "Discovery"]),
                "warm_intro_asks": ("trigger_event", ["webinar", "QBR meeting", "cold call", "n.p.s"]),
                "qbr_notes": ("status", ["done", "held", "postponed", "Complete"]),
            }[source]
            _set(cols, col, sel, choice(pool, len(sel)))
        elif kind == "missing_required":
            sel = pick(k)
            col = {"accounts": "account_name", "partners": "partner_name", "opportunities": "created_at",
                   "warm_intro_asks": "account_id", "nps_responses": "score", "qbr_notes": "held_on"}[source]
            _set(cols, col, sel, pa.nulls(len(sel), cols[col].type))
        elif kind in ("bad_timestamp", "bad_date"):
            sel = pick(k)
            col = {"accounts": "customer_since", "opportunities": "created_at", "warm_intro_asks": "asked_at",
                   "nps_responses": "responded_at", "qbr_notes": "held_on"}[source]
            pool = (["2025-02-30", "15/03/2024", "2024-13-01", "March 3, 2025", "2024-00-10"] if kind == "bad_date"
                    else ["2025-02-30T10:00:00Z", "31/03/2025 14:00", "2025-13-05T08:00:00", "yesterday",
                          "2024-06-31 09:15:00", "Q3 2025"])
            _set(cols, col, sel, choice(pool, len(sel)))
        elif kind == "churned_before_customer_since":
            sel = pick(k, aux["since"] >= 0)
            _set(cols, "churned_on", sel, _dates(aux["since"][sel] - rng.integers(5, 400, len(sel))))
        elif kind == "negative_amount":
            sel = pick(k)
            vals = -np.maximum(aux["amount"][sel], 100.0)
            _set(cols, "amount", sel, pa.array(vals).cast(pa.decimal128(14, 2)))
        elif kind == "closed_without_closed_at":
            sel = pick(k, aux["closed"])
            _set(cols, "closed_at", sel, pa.nulls(len(sel), pa.string()))
        elif kind == "open_with_closed_at":
            sel = pick(k, ~aux["closed"])
            _set(cols, "closed_at", sel, _fmt_ts_plain(np.minimum(aux["created"][sel] + 10 * DAY, END_S - 1)))
        elif kind == "closed_before_created":
            sel = pick(k, aux["closed"] & (aux["created"] > 0))
            _set(cols, "closed_at", sel, _fmt_ts_plain(aux["created"][sel] - rng.integers(DAY, 40 * DAY, len(sel))))
        elif kind == "referrer_without_type":
            sel = pick(k, aux["rtype"] < 0)
            _set(cols, "referrer_id", sel, _ids("EMP-", rng.integers(1, 900, len(sel)), 4))
        elif kind == "score_out_of_range":
            sel = pick(k)
            _set(cols, "score", sel, pa.array(np.array([11, 11, 12, -1])[rng.integers(0, 4, len(sel))]))
        else:  # pragma: no cover
            raise AssertionError(kind)
        done[kind] = int(len(sel))

    # duplicates: copies of untouched rows, placed at random positions
    extra_src, extra_kind = [], []
    for kind, k in dup_specs:
        sel = pick(k)
        extra_src.append(sel)
        extra_kind.append(np.full(len(sel), 0 if kind == "identical_duplicate" else 1))
        done[kind] = int(len(sel))
    take = None
    if extra_src:
        src = np.concatenate(extra_src)
        kind_arr = np.concatenate(extra_kind)
        m = len(src)
        all_idx = np.concatenate([np.arange(n), src])
        key = np.concatenate([np.arange(n, dtype=np.float64), rng.random(m) * n])
        order = np.argsort(key, kind="stable")
        take = all_idx[order]
        is_copy = np.concatenate([np.zeros(n, bool), np.ones(m, bool)])[order]
        conflict = np.concatenate([np.zeros(n, bool), kind_arr == 1])[order]
        new = {c: a.take(_i32(take)) for c, a in cols.items()}
        new_aux = {c: (a.take(_i32(take)) if isinstance(a, (pa.Array, pa.ChunkedArray)) else a[take])
                   for c, a in aux.items() if hasattr(a, "__len__") and len(a) == n}
        cpos = np.flatnonzero(conflict)
        if len(cpos):
            col = {"accounts": "csm_owner", "partners": "partner_tier", "opportunities": "amount",
                   "warm_intro_asks": "outcome", "nps_responses": "score", "qbr_notes": "status"}[source]
            if col == "amount":
                cur = new_aux["amount"][cpos]
                vals = pa.array(np.round(cur * 1.1 + 500, 2)).cast(pa.decimal128(14, 2))
            elif col == "score":
                vals = pa.array((new_aux["score"][cpos] + 3) % 11)
            elif col == "status":
                was_completed = new_aux["status"][cpos] == 0
                vals = pa.array(np.where(was_completed, "cancelled", "completed"))
                new_aux["status"][cpos] = np.where(was_completed, 1, 0)
            elif col == "csm_owner":
                vals = pa.array(choice(["Unassigned Queue", "Former CSM"], len(cpos)))
            elif col == "partner_tier":
                vals = pa.array(choice(["registered", "silver"], len(cpos)))
                # ensure it differs after normalisation
                cur = pc.utf8_lower(pc.utf8_trim_whitespace(new["partner_tier"].take(_i32(cpos)))).to_pylist()
                vals = pa.array(["silver" if c == "registered" else "registered" for c in cur])
            else:  # outcome
                cur = pc.utf8_lower(pc.utf8_trim_whitespace(new["outcome"].take(_i32(cpos)))).to_pylist()
                vals = pa.array(["declined" if c == "accepted" else "accepted" for c in cur])
            _set(new, col, cpos, vals)
        cols, aux = new, {**aux, **new_aux}
        aux["_is_copy"] = is_copy
    return cols, aux, done


# --------------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------------
def _csv_bytes(table: pa.Table, header: bool) -> bytes:
    buf = io.BytesIO()
    pcsv.write_csv(table, buf, pcsv.WriteOptions(include_header=header, quoting_style="needed"))
    data = buf.getvalue()
    if MARK_PLUS.encode() in data:
        data = data.replace(f'"{MARK_PLUS}"'.encode(), b'"Retail","unexpected extra cell"')
    if MARK_MINUS.encode() in data:
        data = data.replace(f',"{MARK_MINUS}"'.encode(), b"")
    if MARK_UTF8.encode() in data:
        data = data.replace(f'"{MARK_UTF8}"'.encode(), b'"' + BAD_UTF8_BYTES + b'"')
    return data


def _jsonl_bytes(cols, aux, rng, not_json_rows: np.ndarray) -> bytes:
    n = len(cols["qbr_id"])

    def q(arr):  # JSON string or null (values are JSON-safe already)
        return pc.if_else(pc.is_null(arr), "null", pc.binary_join_element_wise('"', arr, '"', ""))

    csm = cols["csm"]
    csm_piece = pc.if_else(pc.is_null(csm), pc.if_else(pa.array(rng.random(n) < 0.5), "", ', "csm": null'),
                           pc.binary_join_element_wise(', "csm": "', csm, '"', ""))
    ts = aux["tag_state"]
    tags_piece = pc.if_else(pa.array(ts == 2), "", pc.if_else(pa.array(ts == 1), ', "tags": null',
                            pc.binary_join_element_wise(', "tags": ', aux["tags_json"], "")))
    notes = aux["notes_json"]
    notes_piece = pc.binary_join_element_wise(', "notes": ', q(notes), "")
    minutes = pc.cast(pa.array(rng.integers(20, 95, n)), pa.string())
    lines = pc.binary_join_element_wise(
        '{"qbr_id": ', q(cols["qbr_id"]), ', "account_id": ', q(cols["account_id"]), ', "held_on": ',
        q(cols["held_on"]), csm_piece, ', "format": ', q(cols["format"]), ', "status": ', q(cols["status"]),
        tags_piece, notes_piece, ', "duration_min": ', minutes, "}\n", "")
    if len(not_json_rows):
        k = len(not_json_rows)
        cut = pc.utf8_slice_codeunits(lines.take(_i32(not_json_rows)), 0, 60)
        alt = pa.array(["----- export page 2 -----\n", '["QBR", "2025-03-01", "virtual"]\n', "null\n", "42\n"])
        broken = pc.binary_join_element_wise(cut, "\n", "")
        which = rng.integers(0, 6, k)
        repl = pc.if_else(pa.array(which < 2), broken, alt.take(_i32(np.minimum(np.maximum(which - 2, 0), 3))))
        tmp = {"l": lines}
        _set(tmp, "l", not_json_rows, repl)
        lines = tmp["l"]
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    offs = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    data = lines.buffers()[2].to_pybytes()[offs[0]:offs[-1]]
    if MARK_UTF8.encode() in data:
        data = data.replace(MARK_UTF8.encode(), b"Caf\xe9 r\xe9union " + BAD_UTF8_BYTES)
    return data


# --------------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------------
def _sizes_for(preset: Preset) -> dict[str, int]:
    return {"accounts": preset.accounts, "partners": preset.partners, "opportunities": preset.opportunities,
            "warm_intro_asks": preset.asks, "nps_responses": preset.nps, "qbr_notes": preset.qbrs}


def generate(out_dir, preset="sample", fmt="csv", bad_fraction=0.0, seed=7, *, sizes=None,
             chunk_rows=CHUNK_ROWS, verbose=False) -> dict[str, dict]:
    """Write all source files under out_dir; return per file {rows, bad_rows, bad, expected_rejected, ...}.

    preset: a name in PRESETS or a Preset; sizes: optional overrides, e.g. {"opportunities": 300}.
    bad_fraction: share of rule-breaking rows per source (0 = all rows valid).  The CLI uses the preset's
    default_bad_fraction (0.3% for sample) when --bad-fraction is not given.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be csv or parquet, not {fmt!r}")
    if not 0 <= bad_fraction < 0.5:
        raise ValueError("bad_fraction must be in [0, 0.5)")
    p = PRESETS[preset] if isinstance(preset, str) else preset
    if sizes:
        fields = {"accounts": "accounts", "partners": "partners", "opportunities": "opportunities",
                  "warm_intro_asks": "asks", "nps_responses": "nps", "qbr_notes": "qbrs", "asks": "asks",
                  "nps": "nps", "qbrs": "qbrs"}
        p = Preset(**{**p.__dict__, **{fields[k]: int(v) for k, v in sizes.items()}})
    out = Path(out_dir)
    world = World(p, seed)
    report: dict[str, dict] = {}
    for si, source in enumerate(SOURCES):
        t0 = time.time()
        stem = STEMS[source]
        ext = ("jsonl" if source == "qbr_notes" else "csv") if fmt == "csv" else "parquet"
        path = out / f"{stem}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        for other in ("csv", "jsonl", "parquet"):  # never leave both a CSV and a Parquet of one stem
            op = out / f"{stem}.{other}"
            if other != ext and op.exists():
                op.unlink()
        n_total = _sizes_for(p)[source]
        step = min(chunk_rows, QBR_CHUNK_ROWS) if source == "qbr_notes" else chunk_rows
        rows = 0
        bad: dict[str, int] = {}
        signal = completed = 0
        writer = None
        with open(path, "wb") as fh:
            for ci, lo in enumerate(range(0, max(n_total, 1), step)):
                hi = min(lo + step, n_total)
                if hi <= lo:
                    break
                rng = np.random.default_rng([seed, si, ci])
                if source == "qbr_notes":
                    cols, aux = build_qbrs(world, rng, lo, hi, p.notes_len)
                else:
                    cols, aux = BUILDERS[source](world, rng, lo, hi)
                n = hi - lo
                brng = np.random.default_rng([seed, si, ci, 99])
                cols, aux, done = inject_bad(source, cols, aux, brng, bad_fraction, fmt, n)
                for k, v in done.items():
                    bad[k] = bad.get(k, 0) + v
                m = len(cols[ID_COL[source]])
                rows += m
                if source == "qbr_notes":
                    st = aux["status"]
                    completed += int((st == 0).sum())
                    signal += int(((st == 0) & aux["signal"]).sum())
                if fmt == "parquet":
                    if source == "qbr_notes":
                        cols = dict(cols)
                        cols["tags"] = aux["tags_list"]
                        cols = {c: cols[c] for c in ["qbr_id", "account_id", "held_on", "csm", "format", "status",
                                                      "tags", "notes"]}
                    table = pa.table(cols)
                    if writer is None:
                        writer = pq.ParquetWriter(fh, table.schema, compression="zstd")
                    writer.write_table(table, row_group_size=step)
                elif source == "qbr_notes":
                    nj = np.flatnonzero(aux["_not_json"]) if "_not_json" in aux else np.array([], dtype=np.int64)
                    fh.write(_jsonl_bytes(cols, aux, brng, nj))
                else:
                    data = _csv_bytes(pa.table(cols), header=(ci == 0))
                    if source == "partners":  # as a spreadsheet tool saves it: BOM + CRLF
                        data = data.replace(b"\n", b"\r\n")
                        if ci == 0:
                            data = b"\xef\xbb\xbf" + data
                    fh.write(data)
            if writer is not None:
                writer.close()
        info = {"path": str(path.relative_to(out)), "rows": rows, "bad_rows": sum(bad.values()), "bad": bad,
                "expected_rejected": sum(bad.values()) + bad.get("conflicting_duplicate", 0),
                "bytes": path.stat().st_size, "seconds": round(time.time() - t0, 2)}
        if source == "qbr_notes":
            info["completed"] = completed
            info["completed_with_signal"] = signal
        report[info["path"]] = info
        if verbose:
            print(f"{info['path']}: {rows:,} rows, {info['bytes'] / 1e6:.1f} MB, {info['seconds']}s",
                  file=sys.stderr, flush=True)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m referral_pipeline.generate_data", description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="sample")
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=["csv", "parquet"], default="csv")
    ap.add_argument("--bad-fraction", type=float, default=None,
                    help="share of rule-breaking rows per source (default: 0.003 for sample, 0 otherwise)")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    bf = PRESETS[a.preset].default_bad_fraction if a.bad_fraction is None else a.bad_fraction
    t0 = time.time()
    rep = generate(a.out, preset=a.preset, fmt=a.format, bad_fraction=bf, seed=a.seed, verbose=True)
    print(json.dumps(rep, indent=2))
    print(f"total {sum(r['bytes'] for r in rep.values()) / 1e6:.2f} MB in {time.time() - t0:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
