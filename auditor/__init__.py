"""bitbucket-auditor: Bitbucket governance evidence for SOC 2 and ISO/IEC 27001 audits."""

__version__ = "0.1.0"
