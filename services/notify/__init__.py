"""Notify (通知): alerts, missed deadlines and ready reports pushed to the county's channels
(generic webhook, 企业微信 and 钉钉 group robots, e-mail), through an outbox of its own so that
nothing is lost while a channel is down (docs/notify.md).

domain/       notices from events, routing rules, message formats, retry schedule (pure)
adapters/     the outbox tables, the HTTP and SMTP senders
entrypoints/  worker.py: the nameko consumer of the events and the sender loop (a timer)
"""

PROCESSES = ("worker",)  # the events people are told of, and the sender of its notifications
GREEN_DNS = True  # its worker looks up webhook and SMTP hosts by name: eventlet's DNS keeps the hub free
