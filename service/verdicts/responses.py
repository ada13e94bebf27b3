"""Who may answer a review: a User Review Response (refUID → the review) is shown under the review only when its
EAS attester is authorized for the review's subject at the response's time — by an active Key Binding or an
approved Controller Witness (``service.verdicts.onchain``), the tiers that need no live look-up. Others are kept
as ``unauthorized`` and not shown."""

from __future__ import annotations

from service.verdicts.onchain import OnchainContext, OnchainVouch, Signer, by_controller_witness, by_key_binding


def response_authorized(*, subject: str, responder: str, at: int, context: OnchainContext) -> bool:
    """Is ``responder`` (an EVM address) authorized to speak for ``subject`` at ``at``?

    Raises: CouldNotCheck from the context's look-up.
    """
    signer = Signer(address=responder.lower())
    for rule in (by_key_binding, by_controller_witness):
        found = rule(service_did=subject, signer=signer, at=at, lookup=context.lookup, anchors=context.anchors)
        if isinstance(found, OnchainVouch):
            return True
    return False
