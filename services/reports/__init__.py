"""Reports (issue #6): the 17:30 daily report (日报, 报指挥部和纪委备案) and the public disclosure
lists (定期公开: 采购、分配、库存、捐赠), built from the services' public gRPC APIs only.

collect.py  gRPC → DayFacts (domain/facts.py: the facts of one county day)
render.py   DayFacts → Markdown, XLSX, disclosure CSVs and HTML (pure)
            (sections.py the report's tables, disclosure.py the public lists)
cli.py      `python -m services.reports --day YYYY-MM-DD --out var/reports/<day>/`
The allocation API serves the same files as GetDailyReport.
"""

PROCESSES = ("scheduler",)  # the 17:30 report, the day's deadlines, its outbox relay, GetDailyReport
