"""An extractive billing FAQ agent: answers with the passage sentences that best match."""
