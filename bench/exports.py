"""How long the interchange mappings take for one large crisis: STIX and MISP export, reading them back,
and one TAXII page, all in process (no server, no broker).

    python bench/exports.py [--indicators 10000] [--runs 3]

Each figure is the median of `--runs` runs; the indicators mix every kind at AMBER, one in ten sighted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from crisis.domain.crisis import CrisisState
from crisis.domain.enums import IndicatorKind, Mode, Status, Tlp
from crisis.domain.indicators import IndicatorIn, normalise
from crisis.interop import misp, stix, taxii
from crisis.interop.export import CrisisExport, SharedIndicator
from crisis.interop.formats import Format, read

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def item(n: int) -> dict[str, Any]:
    hexed = f"{n:0128x}"
    kinds: list[dict[str, Any]] = [
        {"kind": "url", "value": f"https://video.example.com/watch?v={n}"},
        {"kind": "md5", "value": hexed[-32:]},
        {"kind": "sha256", "value": hexed[-64:]},
        {"kind": "pdq", "value": hexed[-64:], "quality": 90},
        {"kind": "tmk", "blob": {"sha256": hexed[-64:], "size": 1000 + n}},
    ]
    return kinds[n % len(kinds)]


def export(count: int) -> CrisisExport:
    state = CrisisState(
        id=str(uuid.uuid4()),
        title="Live-streamed attack",
        mode=Mode.LIVE,
        status=Status.ACTIVATED,
        level=2,
        tlp=Tlp.AMBER,
        created_by="hub",
        created_at=T0,
        updated_at=T0,
        version=2,
    )
    items = []
    for n in range(count):
        at = T0 + timedelta(seconds=n)
        seen = [("vidshare", at + timedelta(minutes=5))] if n % 10 == 0 else []
        indicator = normalise(IndicatorIn(**item(n)))
        items.append(SharedIndicator(str(uuid.uuid4()), indicator, "bka", at, Tlp.AMBER, sightings=seen))
    assert all(i.indicator.kind in IndicatorKind for i in items)
    return CrisisExport(state, items)


def median_ms(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--indicators", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data = export(args.indicators)
    bundle_text = stix.bundle(data).serialize()
    misp_text = json.dumps(misp.event(data))
    objects = json.loads(bundle_text)["objects"]
    figures = {
        "STIX bundle, built and serialised": lambda: stix.bundle(data).serialize(),
        "MISP event, built and serialised": lambda: json.dumps(misp.event(data)),
        "STIX bundle read back": lambda: read(bundle_text, Format.STIX),
        "MISP event read back": lambda: read(misp_text, Format.MISP),
        "TAXII page of 1,000 (all objects dated)": lambda: taxii.page(taxii.stored(objects, T0), limit=1000),
    }
    sizes = f"STIX {len(bundle_text) / 1e6:.1f} MB, MISP {len(misp_text) / 1e6:.1f} MB"
    print(f"{args.indicators} indicators: {sizes}")
    for name, work in figures.items():
        print(f"{name}: {median_ms(args.runs, work):,.0f} ms (median of {args.runs})")


if __name__ == "__main__":
    main()
