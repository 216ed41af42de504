"""Moving a site onto ddi and back: parsers of other servers' files (dnsmasq, Kea, ISC dhcpd,
BIND zone files, CSV) into import items, and writers of those forms from ddi's objects.

Rules:
* Pure: each parser takes the text of one file (and its name, for messages) and returns an
  :class:`~ddi.migrate.items.Parsed`; it opens nothing. The CLI reads the files, bounded
  (``ddi.migrate.limits``), and follows the includes a parser reports.
* Every refusal names ``file:line`` and why; what is deliberately not carried (a dnsmasq tag,
  an IPv6 entry, an expired lease) is listed as skipped, with why, and is no refusal.
* Items are values with plain fields (strings, numbers): the same shape goes over the admin
  API in one bulk request (``POST /v1/import``), where the store checks and writes them in one
  transaction (``ddi.ipam.import_plan``, ``ddi.ipam.store_import``).
"""
