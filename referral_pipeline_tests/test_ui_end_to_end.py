"""End to end through the UI's API: the real `dagster dev` (webserver + daemon) on a loopback port,
its GraphQL API asked for the asset graph, the checks, the schedules and the freshness policies, a
backfill of four quarters launched through GraphQL and run by the daemon, and the KPI rows it wrote.

Every process `dagster dev` starts is in one process group (its own session), stopped in the
fixture's teardown, also when the test fails; the teardown fails if any of them survives.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from filelock import FileLock

from referral_pipeline.lib.sources import SOURCES
from referral_pipeline_tests.fixtures import Pipeline, qbr, referred_opportunity, worked_examples
from referral_pipeline_tests.dagster_processes import MODULE, DagsterDev, dagster_dev

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCATION = MODULE  # `dagster dev -m <module>` names the code location after the module
QUARTERS = {"2024-07-01": "2024-Q3", "2024-10-01": "2024-Q4", "2025-01-01": "2025-Q1", "2025-04-01": "2025-Q2"}
KPIS = ("strategic_referral_win_rate", "warm_intro_offer_rate", "qbr_referral_intent_rate")
BACKFILL_TIMEOUT_S = 300
FACTS = ("strategic_referral_opportunities", "active_customers", "warm_introduction_offers", "completed_qbrs")
QUARTERLY = {"intermediate/qbr_referral_signals", *(f"facts/{f}" for f in FACTS), *(f"kpi/{k}" for k in KPIS),
             "kpi/referral_funnel"}

ASSET_GRAPH_QUERY = """
query AssetGraph {
  assetNodes {
    assetKey { path }
    dependencyKeys { path }
    groupName
    kinds
    description
    isObservable
    isMaterializable
    isPartitioned
    backfillPolicy { policyType }
    internalFreshnessPolicy {
      __typename
      ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds }
      ... on CronFreshnessPolicy { deadlineCron lowerBoundDeltaSeconds timezone }
    }
    hasAssetChecks
    assetChecksOrError {
      __typename
      ... on AssetChecks { checks { name blocking description } }
      ... on AssetCheckNeedsMigrationError { message }
      ... on AssetCheckNeedsUserCodeUpgrade { message }
      ... on AssetCheckNeedsAgentUpgradeError { message }
    }
  }
}
"""

SCHEDULES_QUERY = """
query Instigators {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes {
        name
        location { name }
        schedules {
          name
          cronSchedule
          executionTimezone
          pipelineName
          description
          scheduleState { status }
        }
        sensors { name sensorState { status } }
      }
    }
    ... on PythonError { message stack }
  }
}
"""

LAUNCH_BACKFILL_MUTATION = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

BACKFILL_QUERY = """
query Backfill($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id
      status
      partitionNames
      assetSelection { path }
      error { message stack }
      runs {
        runId
        status
        tags { key value }
        assetSelection { path }
      }
    }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

CHECK_RESULTS_QUERY = """
query CheckResults {
  assetNodes {
    assetKey { path }
    assetChecksOrError {
      ... on AssetChecks {
        checks {
          name
          executionForLatestMaterialization { status runId }
        }
      }
    }
  }
}
"""

RUN_LOGS_QUERY = """
query RunLogs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message level stepKey }
        ... on ExecutionStepFailureEvent { error { message stack } }
        ... on RunFailureEvent { pipelineName }
      }
    }
  }
}
"""


def source_folder(folder: Path) -> Path:
    """The seeds' worked examples (2025-Q2), a few rows in the backfill's other quarters, and one
    quarter before the range that the backfill must leave alone."""
    s = worked_examples()
    s.opportunities += [
        # 2024-Q4: two strategic referrals (the strategic account, a gold partner), one won
        referred_opportunity("Q4A", "2024-11-05T09:00:00Z", "REF", "customer", stage="closed_won"),
        referred_opportunity("Q4B", "2024-12-31T23:59:59Z", "GOLD", "partner"),
        # 2024-Q2: before the backfill's range; its quarter must not be written
        referred_opportunity("Q2A", "2024-05-01T00:00:00Z", "REF", "customer", stage="closed_won"),
    ]
    s.qbr_notes += [
        qbr("Q1A", "C0", "2025-02-10", tags=["Referral_Intent"]),  # 2025-Q1: 1 of 2 with a signal
        qbr("Q1B", "C1", "2025-03-31", notes="Reviewed adoption."),
    ]
    return s.write(folder)


_T0 = time.monotonic()  # reset by the fixture


def phase(what: str) -> None:
    """Progress with elapsed seconds, on stdout (pytest shows it when the test fails)."""
    print(f"[{time.monotonic() - _T0:6.1f} s] {what}", flush=True)


@dataclass
class Ui:
    """The running `dagster dev`, and the source folder and warehouse its runs use."""

    dev: DagsterDev
    data_dir: Path
    warehouse: Path


@pytest.fixture
def ui(tmp_path: Path):
    """`dagster dev` over a temporary DAGSTER_HOME, source folder and warehouse; stopped on teardown."""
    global _T0
    _T0 = time.monotonic()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_DIR / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    data_dir = source_folder(tmp_path / "exports")
    warehouse = tmp_path / "warehouse" / "kpis.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "REFERRAL_"))}
    env.update(
        DAGSTER_HOME=str(home),
        REFERRAL_DATA_DIR=str(data_dir),
        REFERRAL_WAREHOUSE=str(warehouse),
        PYTHONUNBUFFERED="1",
    )
    phase("starting dagster dev")
    with dagster_dev(PROJECT_DIR, env, tmp_path / "dagster_dev.log", LOCATION) as dev:
        dev.wait_until_loaded(LOCATION, timeout=120)
        phase(f"dagster dev ready on port {dev.port}")
        yield Ui(dev=dev, data_dir=data_dir, warehouse=warehouse)
        phase("stopping dagster dev")
    phase("dagster dev stopped")


def read_warehouse(warehouse: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Read-only, under the pipeline's writer lock: a run the daemon started (the sensor's, say) may
    be writing the file."""
    with FileLock(f"{warehouse}.lock"), duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()


# Quarters up to the backfill's last: a run of the daily schedule (should the test span 03:00 UTC)
# writes the quarter in progress, later than these.
UP_TO_BACKFILL = f"quarter <= '{max(QUARTERS.values())}'"


def overall(warehouse: Path, kpi: str) -> dict[str, tuple]:
    rows = read_warehouse(
        warehouse,
        f"SELECT quarter, numerator, denominator, rate_pct FROM kpi.{kpi} "
        f"WHERE dimension = 'overall' AND segment = 'all' AND {UP_TO_BACKFILL} ORDER BY quarter",
    )
    return {quarter: tuple(values) for quarter, *values in rows}


def path(node_or_key: dict) -> str:
    return "/".join(node_or_key["path"])


def failure_details(dev: DagsterDev, backfill: dict) -> str:
    """The backfill's error and its failed runs' step errors, for the assertion message."""
    lines = [f"backfill {backfill['id']} is {backfill['status']}: {backfill.get('error')}"]
    for run in backfill["runs"]:
        lines.append(f"run {run['runId']} {run['status']} {[path(k) for k in run['assetSelection'] or []]}")
        if run["status"] != "SUCCESS":
            events = dev.graphql(RUN_LOGS_QUERY, {"runId": run["runId"]})["logsForRun"].get("events", [])
            for event in events:
                if event.get("error") or event.get("level") == "ERROR":
                    lines.append(f"  {event.get('stepKey')}: {event.get('message')} {event.get('error')}")
    return "\n".join(lines)[-8000:] + "\n--- dagster dev log ---\n" + dev.log_tail(3000)


def test_ui_graph_schedules_and_a_four_quarter_backfill(ui: Ui):
    server = ui.dev
    # --- the asset graph, as the UI's lineage view gets it
    nodes = {path(n["assetKey"]): n for n in server.graphql(ASSET_GRAPH_QUERY)["assetNodes"]}
    edges = {(path(dep), key) for key, node in nodes.items() for dep in node["dependencyKeys"]}
    names = [source.name for source in SOURCES]
    assert sorted(names) == sorted(
        ["accounts", "partners", "opportunities", "warm_intro_asks", "nps_responses", "qbr_notes"]
    )
    expected_keys = (
        {f"sources/{n}" for n in names}
        | {f"staging/{n}" for n in names}
        | {"quarantine/rejected_rows", "reports/kpi_dashboard"}
        | QUARTERLY
    )
    assert set(nodes) == expected_keys
    staged = lambda *tables: {f"staging/{t}" for t in tables}
    parents = {
        "quarantine/rejected_rows": staged(*names),
        "intermediate/qbr_referral_signals": staged("qbr_notes"),
        "facts/strategic_referral_opportunities": staged("opportunities", "accounts", "partners"),
        "facts/active_customers": staged("accounts", "warm_intro_asks", "nps_responses"),
        "facts/warm_introduction_offers": staged("warm_intro_asks") | {"facts/active_customers"},
        "facts/completed_qbrs": staged("qbr_notes", "accounts") | {"intermediate/qbr_referral_signals"},
        "kpi/strategic_referral_win_rate": {"facts/strategic_referral_opportunities"},
        "kpi/warm_intro_offer_rate": {"facts/active_customers", "facts/warm_introduction_offers"},
        "kpi/qbr_referral_intent_rate": {"facts/completed_qbrs"},
        "kpi/referral_funnel": {"facts/active_customers", "facts/completed_qbrs", "staging/opportunities"},
        "reports/kpi_dashboard": {f"kpi/{k}" for k in KPIS} | {"kpi/referral_funnel"},
    }
    expected_edges = {(f"sources/{n}", f"staging/{n}") for n in names} | {
        (parent, child) for child, ps in parents.items() for parent in ps
    }
    assert edges == expected_edges
    for key, node in nodes.items():
        layer = "staging" if key == "quarantine/rejected_rows" else key.split("/")[0]
        assert node["groupName"] == layer, key
        assert node["description"] and "`" not in node["description"], f"{key}: no plain description in the UI"
        assert node["hasAssetChecks"] is (layer not in ("facts", "reports") and key != "quarantine/rejected_rows"), key
    assert {k for k, n in nodes.items() if n["isObservable"]} == {f"sources/{n}" for n in names}
    assert not any(nodes[f"sources/{n}"]["isMaterializable"] for n in names)
    materializable = sorted(k for k, n in nodes.items() if n["isMaterializable"])
    assert materializable == sorted(expected_keys - {f"sources/{n}" for n in names} - {"quarantine/rejected_rows"})
    assert {k for k, n in nodes.items() if n["isPartitioned"]} == QUARTERLY
    assert all(nodes[k]["backfillPolicy"]["policyType"] == "SINGLE_RUN" for k in materializable)
    assert set(nodes["staging/nps_responses"]["kinds"]) == {"duckdb", "pandera"}
    assert set(nodes["sources/qbr_notes"]["kinds"]) == {"json", "file"}
    assert set(nodes["sources/accounts"]["kinds"]) == {"csv", "file"}

    # --- the checks
    def checks(key: str) -> dict[str, dict]:
        result = nodes[key]["assetChecksOrError"]
        assert result["__typename"] == "AssetChecks", result
        return {c["name"]: c for c in result["checks"]}

    for n in names:
        assert set(checks(f"sources/{n}")) == {"export_is_fresh"}
        staging = checks(f"staging/{n}")
        assert {"rejected_share_within_tolerance", "rejected_rows"} <= set(staging)
        assert staging["rejected_share_within_tolerance"]["blocking"] is True
        assert staging["rejected_rows"]["blocking"] is False
    for n in ("opportunities", "warm_intro_asks", "nps_responses", "qbr_notes"):
        assert "account_id_known" in checks(f"staging/{n}")
    assert "referrer_resolves" in checks("staging/opportunities")
    assert set(checks("intermediate/qbr_referral_signals")) == {"one_row_per_qbr"}
    for k in KPIS:
        assert set(checks(f"kpi/{k}")) == {
            "numerator_within_denominator", "one_row_per_segment", "closed_quarter_materialised", "matches_its_facts"
        }
        assert checks(f"kpi/{k}")["matches_its_facts"]["blocking"] is True
    assert set(checks("kpi/referral_funnel")) == {
        "five_steps_per_quarter", "accounts_through_never_grow", "accounts_within_scope"
    }

    # --- the freshness policies: the KPIs and the funnel, 26 h warn and 36 h fail; nothing else has one
    for key, node in nodes.items():
        policy = node["internalFreshnessPolicy"]
        if key.startswith("kpi/"):
            assert policy == {
                "__typename": "TimeWindowFreshnessPolicy",
                "failWindowSeconds": 36 * 3600,
                "warnWindowSeconds": 26 * 3600,
            }, key
        else:
            assert policy is None, key

    # --- the schedules and the sensor
    repositories = server.graphql(SCHEDULES_QUERY)["repositoriesOrError"]
    assert repositories["__typename"] == "RepositoryConnection", repositories
    (repository,) = repositories["nodes"]
    assert repository["location"]["name"] == LOCATION
    schedules = {s["name"]: s for s in repository["schedules"]}
    assert set(schedules) == {"daily_kpi_refresh", "hourly_source_observation"}
    daily, hourly = schedules["daily_kpi_refresh"], schedules["hourly_source_observation"]
    assert (daily["cronSchedule"], daily["executionTimezone"], daily["pipelineName"]) == (
        "0 3 * * *", "UTC", "refresh_kpis"
    )
    assert (hourly["cronSchedule"], hourly["executionTimezone"], hourly["pipelineName"]) == (
        "0 * * * *", "UTC", "observe_source_files"
    )
    assert all(s["scheduleState"]["status"] == "RUNNING" and s["description"] for s in schedules.values())
    sensors = {s["name"]: s for s in repository["sensors"]}
    assert sensors["changed_quarters_sensor"]["sensorState"]["status"] == "RUNNING"

    # --- a backfill of four quarters of every materialisable asset, as "Launch backfill" does
    launched = server.graphql(
        LAUNCH_BACKFILL_MUTATION,
        {
            "params": {
                "partitionNames": list(QUARTERS),
                "assetSelection": [{"path": key.split("/")} for key in materializable],
                "title": "end-to-end test: 2024-Q3..2025-Q2",
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    phase(f"backfill {backfill_id} launched")

    deadline = time.monotonic() + BACKFILL_TIMEOUT_S
    seen: list[str] = []
    while True:
        backfill = server.graphql(BACKFILL_QUERY, {"backfillId": backfill_id})["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        if backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS"):
            phase(f"backfill {backfill['status']}")
            break
        if backfill["status"] in ("FAILED", "FAILING", "COMPLETED_FAILED", "CANCELED", "CANCELING"):
            pytest.fail(failure_details(server, backfill))
        if time.monotonic() > deadline:
            pytest.fail(f"backfill not done after {BACKFILL_TIMEOUT_S} s\n" + failure_details(server, backfill))
        if [r["status"] for r in backfill["runs"]] != seen:
            seen = [r["status"] for r in backfill["runs"]]
            phase(f"backfill {backfill['status']}, runs {seen}")
        time.sleep(1)

    assert sorted(backfill["partitionNames"]) == sorted(QUARTERS)
    assert sorted(path(k) for k in backfill["assetSelection"]) == materializable
    runs = backfill["runs"]
    assert runs and all(r["status"] == "SUCCESS" for r in runs), failure_details(server, backfill)
    # single-run backfill policy: the four quarters of the partitioned assets are one run
    ranged = [r for r in runs if {"key": "dagster/asset_partition_range_start", "value": "2024-07-01"} in r["tags"]]
    assert len(ranged) == 1, failure_details(server, backfill)
    assert {"key": "dagster/asset_partition_range_end", "value": "2025-04-01"} in ranged[0]["tags"]
    assert {path(k) for k in ranged[0]["assetSelection"]} == QUARTERLY
    assert {path(k) for r in runs for k in r["assetSelection"]} == set(materializable)

    # --- the KPI rows: the four quarters, and nothing before them
    win_rate = overall(ui.warehouse, "strategic_referral_win_rate")
    intent = overall(ui.warehouse, "qbr_referral_intent_rate")
    warm = overall(ui.warehouse, "warm_intro_offer_rate")
    for rows in (win_rate, intent, warm):
        assert sorted(rows) == sorted(QUARTERS.values())  # 2024-Q2, before the range, is not written
    assert win_rate["2025-Q2"] == (24, 40, 60.0)
    assert win_rate["2024-Q4"] == (1, 2, 50.0)
    assert win_rate["2024-Q3"] == win_rate["2025-Q1"] == (0, 0, None)
    assert intent["2025-Q2"] == (18, 60, 30.0)
    assert intent["2025-Q1"] == (1, 2, 50.0)
    assert intent["2024-Q3"] == intent["2024-Q4"] == (0, 0, None)
    # in scope: the 252 active customers (REF, SMB, C0..C249); asked in 2025-Q2: 38 promoters, 10 passives
    assert warm["2025-Q2"] == (48, 252, 100 * 48 / 252)
    assert warm["2025-Q1"] == (0, 252, 0.0)

    phase("KPI rows as expected")
    # the same rows as the pipeline run in-process over the same quarters
    reference = Pipeline(data_dir=ui.data_dir, warehouse=ui.warehouse.parent / "reference.duckdb")
    reference.run(partition_range=(min(QUARTERS), max(QUARTERS)))
    for kpi in KPIS:
        snapshot = f"SELECT * FROM kpi.{kpi} WHERE {UP_TO_BACKFILL} ORDER BY ALL"
        assert read_warehouse(ui.warehouse, snapshot) == reference.query(snapshot), kpi

    phase("same rows as an in-process run")
    # --- the checks the backfill ran passed, as the UI shows them
    results = {
        path(n["assetKey"]): {
            c["name"]: (c["executionForLatestMaterialization"] or {}).get("status")
            for c in n["assetChecksOrError"].get("checks", [])
        }
        for n in server.graphql(CHECK_RESULTS_QUERY)["assetNodes"]
    }
    for n in names:
        assert results[f"staging/{n}"]["rejected_share_within_tolerance"] == "SUCCEEDED", results
        assert results[f"staging/{n}"]["rejected_rows"] == "SUCCEEDED", results
    for k in KPIS:
        assert results[f"kpi/{k}"]["numerator_within_denominator"] == "SUCCEEDED", results
        assert results[f"kpi/{k}"]["one_row_per_segment"] == "SUCCEEDED", results
