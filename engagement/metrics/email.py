"""Email metrics: open, click, click-to-open and unsubscribe rates (Mailchimp's bases)."""

from __future__ import annotations

from engagement._result import MetricResult
from engagement.intervals import proportion_result

__all__ = ["email_open_rate", "email_click_rate", "click_to_open_rate", "unsubscribe_rate"]


def email_open_rate(unique_opens: int, delivered: int, *, confidence: float = 0.95) -> MetricResult:
    """Email open rate: unique opens / delivered emails (sent - bounced).

    Notes
    -----
    Opens are pixel loads: image blocking hides some, and Apple Mail Privacy
    Protection (since September 2021) pre-loads pixels and inflates opens. Some
    tools divide by *sent*; Mailchimp divides by delivered, as here.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.email_open_rate(210, 1000).value
    0.21
    """
    return proportion_result(
        "email_open_rate", unique_opens, delivered, successes_name="unique_opens", trials_name="delivered",
        confidence=confidence, method_note="unique opens / delivered",
    )


def email_click_rate(unique_clickers: int, delivered: int, *, confidence: float = 0.95) -> MetricResult:
    """Email click rate: recipients who clicked / delivered emails.

    Notes
    -----
    Count unique recipients, and leave unsubscribe and preference links out (a
    click on "unsubscribe" is not engagement, as HubSpot notes).

    Examples
    --------
    >>> import engagement as eg
    >>> eg.email_click_rate(26, 1000).value
    0.026
    """
    return proportion_result(
        "email_click_rate", unique_clickers, delivered, successes_name="unique_clickers",
        trials_name="delivered", confidence=confidence, method_note="unique clickers / delivered",
    )


def click_to_open_rate(unique_clickers: int, unique_opens: int, *, confidence: float = 0.95) -> MetricResult:
    """Click-to-open rate: unique clickers / unique openers.

    Notes
    -----
    A click proves an open, so count clickers among openers (Mailchimp does);
    more clickers than openers is refused. Inflated opens (Apple MPP) push CTOR down.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.click_to_open_rate(26, 208).value
    0.125
    """
    return proportion_result(
        "click_to_open_rate", unique_clickers, unique_opens, successes_name="unique_clickers",
        trials_name="unique_opens", confidence=confidence, method_note="unique clickers / unique openers",
    )


def unsubscribe_rate(unsubscribes: int, delivered: int, *, confidence: float = 0.95) -> MetricResult:
    """Unsubscribe rate: unsubscribes / delivered emails.

    Examples
    --------
    >>> import engagement as eg
    >>> eg.unsubscribe_rate(3, 1000).value
    0.003
    """
    return proportion_result(
        "unsubscribe_rate", unsubscribes, delivered, successes_name="unsubscribes", trials_name="delivered",
        confidence=confidence, method_note="unsubscribes / delivered",
    )
