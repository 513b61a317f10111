"""The dated price tables (``cost/prices/<region>.json``) and the errors of a missing price.

Each table holds AWS's public list prices for one region, each entry with its unit, the price page
it was read from and the date; the model never falls back to a default or zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

PRICES_DIR = Path(__file__).resolve().parent / "prices"


class CostError(ValueError):
    """A configuration the cost model cannot price: the message names the key and the fix."""


@dataclass(frozen=True)
class PriceTable:
    """Prices of one region.

    :param region: AWS region, e.g. ``us-east-1``.
    :param prices_date: ``YYYY-MM-DD`` the table was read from the price pages.
    :param entries: price key -> ``{"usd": float, "unit": str, "source": url, "date": str}``.
    :param path: the JSON file, named in errors.
    """

    region: str
    prices_date: str
    entries: dict[str, dict]
    path: Path

    def usd(self, key: str) -> float:
        """Return the price of ``key`` in USD (per the entry's unit).

        :raises CostError: when the table has no such price, naming the key and the file.
        """
        entry = self.entries.get(key)
        if entry is None or not isinstance(entry.get("usd"), (int, float)):
            raise CostError(
                f"missing price {key!r} in {self.path.name} (region {self.region}): add it to "
                f"cost/prices/{self.path.name} with its usd, unit, source page and date"
            )
        return float(entry["usd"])

    def has(self, key: str) -> bool:
        return key in self.entries


def available_regions(prices_dir: Path = PRICES_DIR) -> list[str]:
    """Regions that have a price table, sorted."""
    return sorted(p.stem for p in prices_dir.glob("*.json"))


def load_prices(region: str, prices_dir: Path = PRICES_DIR) -> PriceTable:
    """Load the price table of ``region``.

    :raises CostError: when no table exists for ``region`` (names the key ``region`` and the fix),
        or the file does not hold the table's shape.
    """
    path = prices_dir / f"{region}.json"
    if not path.is_file():
        raise CostError(
            f"region={region!r}: no price table cost/prices/{region}.json; priced regions: "
            f"{', '.join(available_regions(prices_dir))}. Use -c region=<one of them> (or --region), "
            f"or add cost/prices/{region}.json with each price's source page and date"
        )
    data = json.loads(path.read_text())
    try:
        table = PriceTable(data["region"], data["prices_date"], dict(data["prices"]), path)
    except (KeyError, TypeError) as err:
        raise CostError(f"{path.name}: expected keys region, prices_date, prices ({err})") from err
    if table.region != region:
        raise CostError(f"{path.name}: holds region {table.region!r}, expected {region!r}")
    return table
