"""Controls as data: the catalog in controls.yaml, the checks, exceptions and the engine.

- ``catalog``: ``load_catalog(path=None) -> Catalog`` (validated, with ``sha256``);
- ``checks``: the registered check functions, one module per family;
- ``branches`` / ``patterns``: which restrictions protect the default branch; the glob dialect;
- ``exceptions``: ``load_exceptions(path, catalog=None) -> ExceptionSet`` and their application;
- ``facts``: ``CredentialFacts`` the operator declares about the auditing credential;
- ``engine``: ``evaluate(evidence, catalog, exceptions, *, evaluated_on, period, credential)``;
- ``effectiveness``: the CM-10/11/12 population of merged pull requests;
- ``results``: the contract with the reporting layer (which writes the CSV/JSON exports).
"""
