"""The Bitbucket Cloud REST client: credentials, session, paging, retries, pacing, statistics."""
