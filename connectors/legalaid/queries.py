"""The GraphQL documents the legal-aid connector sends (validated against the system's SDL in the tests)."""

from __future__ import annotations

__all__ = ["APPLICATIONS", "APPLICATIONS_BY_NO", "RECORD_FEEDBACK"]

_PARTY = "name phone idCard creditCode isOrganisation"

APPLICATION_FIELDS = f"""
fragment ApplicationFields on Application {{
  applicationNo subject
  applicant {{ {_PARTY} }}
  applicantCategory
  opponent {{ {_PARTY} }}
  aidType serviceType matterCategory matter
  street community address
  reviewDecision status
  assignedLawyer {{ name firm licenseNo }}
  submittedAt updatedAt
}}
"""

APPLICATIONS = """
query Applications($since: DateTime, $first: Int!, $after: String) {
  applications(updatedSince: $since, first: $first, after: $after) {
    edges { cursor node { ...ApplicationFields } }
    pageInfo { hasNextPage endCursor }
  }
}
""" + APPLICATION_FIELDS

APPLICATIONS_BY_NO = """
query ApplicationsByNo($nos: [ID!]!) {
  applicationsByNo(nos: $nos) {
    ...ApplicationFields
    feedback { requestId kind message operator at }
  }
}
""" + APPLICATION_FIELDS

RECORD_FEEDBACK = """
mutation RecordFeedback($input: RecordFeedbackInput!) {
  recordFeedback(input: $input) {
    ok duplicate code message
    application { applicationNo status reviewDecision }
  }
}
"""
