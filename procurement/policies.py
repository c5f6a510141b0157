"""Every workflow's access policy, in the order docs/access.md prints them."""

from __future__ import annotations

from procurement.access import Policy
from procurement.contracts.access import POLICY as CONTRACTS
from procurement.needs.access import POLICY as NEEDS
from procurement.reminders.access import POLICY as REMINDERS

POLICIES: tuple[Policy, ...] = (NEEDS, CONTRACTS, REMINDERS)


if __name__ == "__main__":
    from procurement.access import access_table

    print(access_table(POLICIES), end="")
