"""Every workflow's access policy, in the order docs/access.md prints them."""

from __future__ import annotations

from procurement.access import Policy
from procurement.competitions.access import POLICY as COMPETITIONS
from procurement.contracts.access import POLICY as CONTRACTS
from procurement.delivery.access import POLICY as DELIVERY
from procurement.deviations.access import POLICY as DEVIATIONS
from procurement.needs.access import POLICY as NEEDS
from procurement.records.archive_access import POLICY as ARCHIVE
from procurement.reminders.access import POLICY as REMINDERS

POLICIES: tuple[Policy, ...] = (NEEDS, CONTRACTS, REMINDERS, COMPETITIONS, DELIVERY, ARCHIVE, DEVIATIONS)


if __name__ == "__main__":
    from procurement.access import access_table

    print(access_table(POLICIES), end="")
