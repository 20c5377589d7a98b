"""Raw input schema: the columns of the vendor files and CRM exports, with their logical types.

This is the contract between the synthetic world (which writes these files), ingest (which
casts them into warehouse tables) and the feature catalog (which reads those tables).
Logical types: ``int``, ``float``, ``bool``, ``date``, ``timestamp`` (UTC-aware), ``str``.
"""

from __future__ import annotations

from typing import Final, Literal

LogicalType = Literal["int", "float", "bool", "date", "timestamp", "str"]

#: One row per advisor (RepCRD) per quarterly vintage; person-level facts.
REPS_COLUMNS: Final[dict[str, LogicalType]] = {
    "RepCRD": "int",
    "RIAFirmCRD": "int",
    "RIAFirmName": "str",
    "FirstName": "str",
    "LastName": "str",
    "Title": "str",
    "Branch_State": "str",
    "Branch_City": "str",
    "Branch_County": "str",
    "Branch_ZipCode": "str",
    "Home_City": "str",
    "Home_County": "str",
    "Home_State": "str",
    "Home_ZipCode": "str",
    "Home_MetropolitanArea": "str",
    "Education": "str",
    "Licenses": "str",
    "Has_CFP": "bool",
    "Has_Series_7": "bool",
    "Has_Series_65": "bool",
    "Has_Series_66": "bool",
    "DateBecameRep": "date",
    "DateOfHireAtCurrentFirm": "date",
    "Number_YearsPriorFirm1": "float",
    "Number_YearsPriorFirm2": "float",
    "Number_YearsPriorFirm3": "float",
    "Number_YearsPriorFirm4": "float",
    "NumberFirmAssociations": "int",
    "NumberRIAFirmAssociations": "int",
    "IsPrimaryRIAFirm": "bool",
    "KnownNonAdvisor": "bool",
    "IsDuallyRegistered": "bool",
    "IsIndependent": "bool",
    "MilesToWork": "float",
    "Number_BranchAdvisors": "int",
    "SocialMedia_LinkedIn": "str",
    "PersonalWebpage": "str",
    "Notes": "str",
    "snapshot_as_of": "date",
    "processed_at": "timestamp",
}

#: One row per RIA firm (RIAFirmCRD) per quarterly vintage; the firm's book of business.
FIRMS_COLUMNS: Final[dict[str, LogicalType]] = {
    "RIAFirmCRD": "int",
    "RIAFirmName": "str",
    "Firm_State": "str",
    "TotalAssetsInMillions": "float",
    "Number_Employees": "int",
    "Number_IAReps": "int",
    "Number_Investment_Advisory_Clients": "int",
    "NumberClients_Individuals": "int",
    "NumberClients_HNWIndividuals": "int",
    "AssetsInMillions_Individuals": "float",
    "AssetsInMillions_HNWIndividuals": "float",
    "AssetsInMillions_MutualFunds": "float",
    "AssetsInMillions_PrivateFunds": "float",
    "AssetsInMillions_Equity_ExchangeTraded": "float",
    "PercentAssets_Individuals": "float",
    "PercentAssets_HNWIndividuals": "float",
    "PercentAssets_MutualFunds": "float",
    "PercentAssets_PrivateFunds": "float",
    "PercentAssets_Equity_ExchangeTraded": "float",
    "AverageAccountSize": "float",
    "PercentClients_Individuals": "float",
    "Percent_ClientsUS": "float",
    "AUMGrowthRate_1Year": "float",
    "AUMGrowthRate_5Year": "float",
    "snapshot_as_of": "date",
    "processed_at": "timestamp",
}

#: Salesforce ``Lead`` export. ``FA_CRD__c`` stays a string on the way in: it can be blank or
#: malformed ("CRD-1234"), and ingest keeps the raw text beside the parsed ``RepCRD``.
LEAD_COLUMNS: Final[dict[str, LogicalType]] = {
    "Id": "str",
    "FA_CRD__c": "str",
    "OwnerId": "str",
    "LeadSource": "str",
    "Status": "str",
    "CreatedDate": "timestamp",
    "LastModifiedDate": "timestamp",
    "Stage_Entered_Contacting__c": "timestamp",
    "Stage_Entered_Call_Scheduled__c": "timestamp",
}

#: Salesforce ``Task`` export: one row per dial.
TASK_COLUMNS: Final[dict[str, LogicalType]] = {
    "Id": "str",
    "WhoId": "str",
    "OwnerId": "str",
    "Type": "str",
    "Subject": "str",
    "CallDisposition": "str",
    "CallDurationInSeconds": "int",
    "ActivityDate": "date",
    "CreatedDate": "timestamp",
}

#: Columns a vendor file may lack without failing ingest (everything else is required).
OPTIONAL_VENDOR_COLUMNS: Final[frozenset[str]] = frozenset({"processed_at"})

#: The 12 PII columns of the vendor files: never features.
PII_COLUMNS: Final[tuple[str, ...]] = (
    "FirstName",
    "LastName",
    "Branch_City",
    "Branch_County",
    "Branch_ZipCode",
    "Home_City",
    "Home_County",
    "Home_ZipCode",
    "RIAFirmCRD",
    "RIAFirmName",
    "PersonalWebpage",
    "Notes",
)

#: File layout of a raw delivery folder (what ``synth`` writes and ``ingest`` reads).
#: vendor/reps_YYYY_qN.csv, vendor/firms_YYYY_qN.csv, crm/Lead.csv, crm/Task.csv;
#: truth/ (lead_truth.csv, planted.json) is written by synth only and never read by training.
VENDOR_DIR: Final = "vendor"
CRM_DIR: Final = "crm"
TRUTH_DIR: Final = "truth"
LEAD_FILE: Final = "Lead.csv"
TASK_FILE: Final = "Task.csv"
