"""Notifications: the targets configured on the server, the delivery of the outbox's
messages and the alert rules of pipelines (what they say is ``workflow.notices``)."""

from workflow.notify.deliver import Deliverer
from workflow.notify.rules import Watch
from workflow.notify.targets import load_targets, signature

__all__ = ["Deliverer", "Watch", "load_targets", "signature"]
