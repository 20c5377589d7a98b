-- leadscore point-in-time query: join=quarter, training (label on),
-- as_of=2025-01-01T00:00:00+00:00, catalog=49ec3852063b
WITH
-- 1. Restrict: the contacted leads, one row per lead id
--    (duplicate ids: earliest contact, then lowest RepCRD).
lead_spine AS (
  SELECT
    CAST(l."Id" AS VARCHAR) AS lead_id,
    l."RepCRD" AS "RepCRD",
    l.crd_status AS crd_status,
    l."OwnerId" AS "OwnerId",
    l."Stage_Entered_Contacting__c" AS contact_ts,
    l."Stage_Entered_Call_Scheduled__c" AS converted_ts,
    l."Stage_Entered_Contacting__c" AS pit_ts
  FROM crm_leads AS l
  WHERE l."Stage_Entered_Contacting__c" IS NOT NULL
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY l."Id"
    ORDER BY l."Stage_Entered_Contacting__c" NULLS LAST, l."RepCRD" NULLS LAST
  ) = 1
),
-- 1. Restrict the reps vintages to the spine's CRDs, so the join touches few rows.
reps_candidates AS (
  SELECT
    "RepCRD",
    "RIAFirmCRD",
    "DateBecameRep",
    "DateOfHireAtCurrentFirm",
    "Has_CFP",
    "Has_Series_65",
    "Has_Series_66",
    "Has_Series_7",
    "Home_MetropolitanArea",
    "Home_State",
    "IsDuallyRegistered",
    "IsIndependent",
    "IsPrimaryRIAFirm",
    "KnownNonAdvisor",
    "MilesToWork",
    "NumberFirmAssociations",
    "NumberRIAFirmAssociations",
    "Number_BranchAdvisors",
    "Number_YearsPriorFirm1",
    "Number_YearsPriorFirm2",
    "Number_YearsPriorFirm3",
    "Number_YearsPriorFirm4",
    snapshot_quarter AS reps_snapshot_quarter,
    available_at AS reps_available_at
  FROM v_discovery_reps_all_vintages
  WHERE "RepCRD" IN (SELECT "RepCRD" FROM lead_spine WHERE "RepCRD" IS NOT NULL)
),
-- 2. Join on key and contact quarter = snapshot_quarter (leaks: for comparison).
-- 3. Break ties: latest available_at, then latest snapshot_quarter.
-- 4. Keep the latest: one reps row per lead.
reps_pit AS (
  SELECT
    s.lead_id,
    r.*
  FROM lead_spine AS s
  JOIN reps_candidates AS r
    ON r."RepCRD" = s."RepCRD"
    AND r.reps_snapshot_quarter
      = CAST(DATE_TRUNC('quarter', CAST(s.pit_ts AS DATE)) AS DATE)
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY s.lead_id
    ORDER BY r.reps_available_at DESC, r.reps_snapshot_quarter DESC
  ) = 1
),
-- 1. Restrict the firms vintages to the firms of the matched rep rows.
firms_candidates AS (
  SELECT
    "RIAFirmCRD",
    "AUMGrowthRate_1Year",
    "AUMGrowthRate_5Year",
    "AssetsInMillions_Equity_ExchangeTraded",
    "AssetsInMillions_HNWIndividuals",
    "AssetsInMillions_Individuals",
    "AssetsInMillions_MutualFunds",
    "AssetsInMillions_PrivateFunds",
    "AverageAccountSize",
    "NumberClients_HNWIndividuals",
    "NumberClients_Individuals",
    "Number_Employees",
    "Number_IAReps",
    "Number_Investment_Advisory_Clients",
    "PercentAssets_HNWIndividuals",
    "PercentAssets_Individuals",
    "PercentAssets_MutualFunds",
    "PercentAssets_PrivateFunds",
    "PercentClients_Individuals",
    "Percent_ClientsUS",
    "TotalAssetsInMillions",
    snapshot_quarter AS firms_snapshot_quarter,
    available_at AS firms_available_at
  FROM v_discovery_firms_all_vintages
  WHERE "RIAFirmCRD" IN (SELECT "RIAFirmCRD" FROM reps_pit WHERE "RIAFirmCRD" IS NOT NULL)
),
-- 2. Join on key and contact quarter = snapshot_quarter (leaks: for comparison).
--    The firm is the rep row's RIAFirmCRD, at the same point in time.
-- 3. Break ties: latest available_at, then latest snapshot_quarter.
-- 4. Keep the latest: one firms row per lead.
firms_pit AS (
  SELECT
    r.lead_id,
    f.*
  FROM reps_pit AS r
  JOIN lead_spine AS s ON s.lead_id = r.lead_id
  JOIN firms_candidates AS f
    ON f."RIAFirmCRD" = r."RIAFirmCRD"
    AND f.firms_snapshot_quarter = r.reps_snapshot_quarter
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY r.lead_id
    ORDER BY f.firms_available_at DESC, f.firms_snapshot_quarter DESC
  ) = 1
),
-- The CRDs present in some reps vintage (tells "not found" from "not yet delivered").
reps_seen AS (
  SELECT DISTINCT "RepCRD"
  FROM reps_candidates
),
-- 5. Left-join back to the lead spine, so no lead disappears silently; say why
--    a lead has no vintage.
joined AS (
  SELECT
    s.*,
    r.* EXCLUDE (lead_id, "RepCRD"),
    f.* EXCLUDE (lead_id, "RIAFirmCRD"),
    CASE
      WHEN s.crd_status = 'missing' THEN 'crd_missing'
      WHEN s.crd_status = 'malformed' OR s."RepCRD" IS NULL THEN 'crd_malformed'
      WHEN r.lead_id IS NOT NULL THEN 'ok'
      WHEN seen."RepCRD" IS NULL THEN 'crd_not_found'
      ELSE 'no_snapshot_yet'
    END AS pit_status
  FROM lead_spine AS s
  LEFT JOIN reps_pit AS r ON r.lead_id = s.lead_id
  LEFT JOIN firms_pit AS f ON f.lead_id = s.lead_id
  LEFT JOIN reps_seen AS seen ON seen."RepCRD" = s."RepCRD"
)
-- 6. Output: keys, vintages, catalog segments and features, the label and the exclusion reason.
--    (Catalog expressions are compiled from features.yaml and wrapped at spaces.)
SELECT
  "lead_id",
  "RepCRD",
  "OwnerId",
  "contact_ts",
  converted_ts,
  DATE_DIFF('day', CAST(contact_ts AS DATE), CAST(converted_ts AS DATE)) AS days_to_conversion,
  CAST(
    CASE
      WHEN converted_ts >= contact_ts
      AND converted_ts <= contact_ts + INTERVAL 30 DAY
      THEN 1
      ELSE 0
    END
  AS BIGINT) AS target,
  reps_snapshot_quarter,
  reps_available_at,
  firms_snapshot_quarter,
  firms_available_at,
  CASE WHEN (TotalAssetsInMillions) IS NULL THEN 'Unknown' WHEN (TotalAssetsInMillions) < 100
    THEN '<$100M' WHEN (TotalAssetsInMillions) <= 500 THEN '$100-500M' ELSE '>$500M' END AS
    "aum_tier",
  CASE WHEN Home_MetropolitanArea IS NULL THEN 'Unknown' WHEN Home_MetropolitanArea =
    'New York-Newark-Jersey City NY-NJ' THEN 'NYC' WHEN Home_MetropolitanArea =
    'Los Angeles-Long Beach-Anaheim CA' THEN 'LosAngeles' WHEN Home_MetropolitanArea =
    'Chicago-Naperville-Elgin IL-IN' THEN 'Chicago' WHEN Home_MetropolitanArea =
    'Dallas-Fort Worth-Arlington TX' THEN 'Dallas' WHEN Home_MetropolitanArea =
    'Miami-Fort Lauderdale-West Palm Beach FL' THEN 'Miami' ELSE 'Other' END AS "metro_area",
  CAST(NumberFirmAssociations AS BIGINT) AS "NumberFirmAssociations",
  CAST(NumberRIAFirmAssociations AS BIGINT) AS "NumberRIAFirmAssociations",
  CAST(IsPrimaryRIAFirm AS BOOLEAN) AS "IsPrimaryRIAFirm",
  CAST(KnownNonAdvisor AS BOOLEAN) AS "KnownNonAdvisor",
  CAST(IsDuallyRegistered AS BOOLEAN) AS "IsDuallyRegistered",
  CAST(IsIndependent AS BOOLEAN) AS "IsIndependent",
  CAST(Has_CFP AS BOOLEAN) AS "Has_CFP",
  CAST(Has_Series_7 AS BOOLEAN) AS "Has_Series_7",
  CAST(Has_Series_65 AS BOOLEAN) AS "Has_Series_65",
  CAST(Has_Series_66 AS BOOLEAN) AS "Has_Series_66",
  CAST(MilesToWork AS DOUBLE) AS "MilesToWork",
  CAST(Number_BranchAdvisors AS BIGINT) AS "Number_BranchAdvisors",
  CAST(Number_YearsPriorFirm1 AS DOUBLE) AS "Number_YearsPriorFirm1",
  CAST(Number_YearsPriorFirm2 AS DOUBLE) AS "Number_YearsPriorFirm2",
  CAST(Number_YearsPriorFirm3 AS DOUBLE) AS "Number_YearsPriorFirm3",
  CAST(Number_YearsPriorFirm4 AS DOUBLE) AS "Number_YearsPriorFirm4",
  CAST((CASE WHEN (Number_YearsPriorFirm1) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN
    (Number_YearsPriorFirm2) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm3) IS
    NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm4) IS NULL THEN 0 ELSE 1 END) AS
    BIGINT) AS "NumberOfPriorFirms",
  CAST(CASE WHEN ((CASE WHEN (Number_YearsPriorFirm1) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN
    (Number_YearsPriorFirm2) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm3) IS
    NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm4) IS NULL THEN 0 ELSE 1 END)) <> 0
    THEN (COALESCE((Number_YearsPriorFirm1), 0) + COALESCE((Number_YearsPriorFirm2), 0) +
    COALESCE((Number_YearsPriorFirm3), 0) + COALESCE((Number_YearsPriorFirm4), 0)) / ((CASE WHEN
    (Number_YearsPriorFirm1) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm2) IS
    NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm3) IS NULL THEN 0 ELSE 1 END) +
    (CASE WHEN (Number_YearsPriorFirm4) IS NULL THEN 0 ELSE 1 END)) ELSE NULL END AS DOUBLE) AS
    "AverageTenureAtPriorFirms",
  CAST(Home_State AS VARCHAR) AS "Home_State",
  CAST(DATE_DIFF('DAY', DateBecameRep, CAST(pit_ts AS DATE)) / 365.25 AS DOUBLE) AS
    "DateBecameRep_NumberOfYears",
  CAST(DATE_DIFF('DAY', DateOfHireAtCurrentFirm, CAST(pit_ts AS DATE)) / 365.25 AS DOUBLE) AS
    "DateOfHireAtCurrentFirm_NumberOfYears",
  CAST(TotalAssetsInMillions AS DOUBLE) AS "TotalAssetsInMillions",
  CAST(Number_Employees AS BIGINT) AS "Number_Employees",
  CAST(Number_IAReps AS BIGINT) AS "Number_IAReps",
  CAST(Number_Investment_Advisory_Clients AS BIGINT) AS "Number_InvestmentAdvisoryClients",
  CAST(NumberClients_Individuals AS BIGINT) AS "NumberClients_Individuals",
  CAST(NumberClients_HNWIndividuals AS BIGINT) AS "NumberClients_HNWIndividuals",
  CAST(AssetsInMillions_Individuals AS DOUBLE) AS "AssetsInMillions_Individuals",
  CAST(AssetsInMillions_HNWIndividuals AS DOUBLE) AS "AssetsInMillions_HNWIndividuals",
  CAST(AssetsInMillions_MutualFunds AS DOUBLE) AS "AssetsInMillions_MutualFunds",
  CAST(AssetsInMillions_PrivateFunds AS DOUBLE) AS "AssetsInMillions_PrivateFunds",
  CAST(AssetsInMillions_Equity_ExchangeTraded AS DOUBLE) AS
    "AssetsInMillions_Equity_ExchangeTraded",
  CAST(PercentAssets_Individuals AS DOUBLE) AS "PercentAssets_Individuals",
  CAST(PercentAssets_HNWIndividuals AS DOUBLE) AS "PercentAssets_HNWIndividuals",
  CAST(PercentAssets_MutualFunds AS DOUBLE) AS "PercentAssets_MutualFunds",
  CAST(PercentAssets_PrivateFunds AS DOUBLE) AS "PercentAssets_PrivateFunds",
  CAST(AverageAccountSize AS DOUBLE) AS "AverageAccountSize",
  CAST(PercentClients_Individuals AS DOUBLE) AS "PercentClients_Individuals",
  CAST(Percent_ClientsUS AS DOUBLE) AS "Percent_ClientsUS",
  CAST(AUMGrowthRate_1Year AS DOUBLE) AS "AUMGrowthRate_1Year",
  CAST(AUMGrowthRate_5Year AS DOUBLE) AS "AUMGrowthRate_5Year",
  CAST(Home_MetropolitanArea = 'New York-Newark-Jersey City NY-NJ' AS BOOLEAN) AS "Metro_NYC",
  CAST(Home_MetropolitanArea = 'Los Angeles-Long Beach-Anaheim CA' AS BOOLEAN) AS
    "Metro_LosAngeles",
  CAST(Home_MetropolitanArea = 'Chicago-Naperville-Elgin IL-IN' AS BOOLEAN) AS "Metro_Chicago",
  CAST(Home_MetropolitanArea = 'Dallas-Fort Worth-Arlington TX' AS BOOLEAN) AS "Metro_Dallas",
  CAST(Home_MetropolitanArea = 'Miami-Fort Lauderdale-West Palm Beach FL' AS BOOLEAN) AS
    "Metro_Miami",
  CAST(CASE WHEN (Number_Investment_Advisory_Clients) <> 0 THEN (TotalAssetsInMillions) /
    (Number_Investment_Advisory_Clients) ELSE NULL END AS DOUBLE) AS "AUM_per_Client",
  CAST(CASE WHEN (Number_Employees) <> 0 THEN (TotalAssetsInMillions) / (Number_Employees) ELSE
    NULL END AS DOUBLE) AS "AUM_per_Employee",
  CAST(CASE WHEN (Number_IAReps) <> 0 THEN (TotalAssetsInMillions) / (Number_IAReps) ELSE NULL
    END AS DOUBLE) AS "AUM_per_IARep",
  CAST((AUMGrowthRate_1Year) * (AUMGrowthRate_5Year) AS DOUBLE) AS "Growth_Momentum",
  CAST((AUMGrowthRate_1Year) - (AUMGrowthRate_5Year) / 5 AS DOUBLE) AS "Growth_Acceleration",
  CAST((DATE_DIFF('DAY', DateOfHireAtCurrentFirm, CAST(pit_ts AS DATE)) / 365.25) / (((CASE WHEN
    (Number_YearsPriorFirm1) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm2) IS
    NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm3) IS NULL THEN 0 ELSE 1 END) +
    (CASE WHEN (Number_YearsPriorFirm4) IS NULL THEN 0 ELSE 1 END)) + 1) AS DOUBLE) AS
    "Firm_Stability_Score",
  CAST(CASE WHEN ((DATE_DIFF('DAY', DateBecameRep, CAST(pit_ts AS DATE)) / 365.25) + 1) <> 0
    THEN (TotalAssetsInMillions) / ((DATE_DIFF('DAY', DateBecameRep, CAST(pit_ts AS DATE)) /
    365.25) + 1) ELSE NULL END AS DOUBLE) AS "Experience_Efficiency",
  CAST(CASE WHEN (NumberClients_Individuals) <> 0 THEN (NumberClients_HNWIndividuals) /
    (NumberClients_Individuals) ELSE NULL END AS DOUBLE) AS "HNW_Client_Ratio",
  CAST(CASE WHEN (TotalAssetsInMillions) <> 0 THEN (AssetsInMillions_HNWIndividuals) /
    (TotalAssetsInMillions) ELSE NULL END AS DOUBLE) AS "HNW_Asset_Concentration",
  CAST(CASE WHEN (TotalAssetsInMillions) <> 0 THEN (AssetsInMillions_Individuals) /
    (TotalAssetsInMillions) ELSE NULL END AS DOUBLE) AS "Individual_Asset_Ratio",
  CAST(CASE WHEN (TotalAssetsInMillions) <> 0 THEN ((AssetsInMillions_MutualFunds) +
    (AssetsInMillions_PrivateFunds)) / (TotalAssetsInMillions) ELSE NULL END AS DOUBLE) AS
    "Alternative_Investment_Focus",
  CAST((Number_Employees) > 100 AS BOOLEAN) AS "Is_Large_Firm",
  CAST((Number_Employees) <= 20 AND (AverageAccountSize) > 2200000.0 AS BOOLEAN) AS
    "Is_Boutique_Firm",
  CAST((TotalAssetsInMillions) > 500 OR (Number_Investment_Advisory_Clients) > 100 AS BOOLEAN)
    AS "Has_Scale",
  CAST((DATE_DIFF('DAY', DateOfHireAtCurrentFirm, CAST(pit_ts AS DATE)) / 365.25) < 2 AS
    BOOLEAN) AS "Is_New_To_Firm",
  CAST((DATE_DIFF('DAY', DateBecameRep, CAST(pit_ts AS DATE)) / 365.25) > 10 AS BOOLEAN) AS
    "Is_Veteran_Advisor",
  CAST(((CASE WHEN (Number_YearsPriorFirm1) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN
    (Number_YearsPriorFirm2) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm3) IS
    NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm4) IS NULL THEN 0 ELSE 1 END)) > 3
    AND (CASE WHEN ((CASE WHEN (Number_YearsPriorFirm1) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN
    (Number_YearsPriorFirm2) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm3) IS
    NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm4) IS NULL THEN 0 ELSE 1 END)) <> 0
    THEN (COALESCE((Number_YearsPriorFirm1), 0) + COALESCE((Number_YearsPriorFirm2), 0) +
    COALESCE((Number_YearsPriorFirm3), 0) + COALESCE((Number_YearsPriorFirm4), 0)) / ((CASE WHEN
    (Number_YearsPriorFirm1) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm2) IS
    NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm3) IS NULL THEN 0 ELSE 1 END) +
    (CASE WHEN (Number_YearsPriorFirm4) IS NULL THEN 0 ELSE 1 END)) ELSE NULL END) < 3 AS BOOLEAN)
    AS "High_Turnover_Flag",
  CAST((AverageAccountSize) > 2200000.0 AND (PercentClients_Individuals) < 50 AS BOOLEAN) AS
    "Premium_Positioning",
  CAST((PercentClients_Individuals) > 80 AND (AverageAccountSize) < 1200000.0 AS BOOLEAN) AS
    "Mass_Market_Focus",
  CAST(CASE WHEN (Number_Employees) <> 0 THEN (Number_Investment_Advisory_Clients) /
    (Number_Employees) ELSE NULL END AS DOUBLE) AS "Clients_per_Employee",
  CAST(CASE WHEN (Number_Employees) <> 0 THEN (Number_BranchAdvisors) / (Number_Employees) ELSE
    NULL END AS DOUBLE) AS "Branch_Advisor_Density",
  CAST(CASE WHEN (Number_IAReps) <> 0 THEN (Number_Investment_Advisory_Clients) /
    (Number_IAReps) ELSE NULL END AS DOUBLE) AS "Clients_per_IARep",
  CAST((MilesToWork) > 50 AS BOOLEAN) AS "Remote_Work_Indicator",
  CAST((MilesToWork) <= 10 AS BOOLEAN) AS "Local_Advisor",
  CAST((NumberRIAFirmAssociations) > 1 AS BOOLEAN) AS "Multi_RIA_Relationships",
  CAST((NumberFirmAssociations) > 2 OR (NumberRIAFirmAssociations) > 1 AS BOOLEAN) AS
    "Complex_Registration",
  CAST((Percent_ClientsUS) > 90 AS BOOLEAN) AS "Primarily_US_Clients",
  CAST((Percent_ClientsUS) < 80 AS BOOLEAN) AS "International_Presence",
  CAST(0.25 * (CASE WHEN ((DATE_DIFF('DAY', DateBecameRep, CAST(pit_ts AS DATE)) / 365.25) > 10)
    THEN 1 ELSE 0 END) + 0.25 * (CASE WHEN ((TotalAssetsInMillions) > 500 OR
    (Number_Investment_Advisory_Clients) > 100) THEN 1 ELSE 0 END) + 0.15 * (CASE WHEN
    ((DATE_DIFF('DAY', DateOfHireAtCurrentFirm, CAST(pit_ts AS DATE)) / 365.25) / (((CASE WHEN
    (Number_YearsPriorFirm1) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm2) IS
    NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm3) IS NULL THEN 0 ELSE 1 END) +
    (CASE WHEN (Number_YearsPriorFirm4) IS NULL THEN 0 ELSE 1 END)) + 1)) > 2.0 THEN 1 ELSE 0 END)
    + 0.15 * (CASE WHEN (IsPrimaryRIAFirm) THEN 1 ELSE 0 END) + 0.10 * (CASE WHEN (CASE WHEN
    (Number_Investment_Advisory_Clients) <> 0 THEN (TotalAssetsInMillions) /
    (Number_Investment_Advisory_Clients) ELSE NULL END) > 1.2 THEN 1 ELSE 0 END) + 0.10 * (CASE
    WHEN (((CASE WHEN (Number_YearsPriorFirm1) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN
    (Number_YearsPriorFirm2) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm3) IS
    NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm4) IS NULL THEN 0 ELSE 1 END)) > 3
    AND (CASE WHEN ((CASE WHEN (Number_YearsPriorFirm1) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN
    (Number_YearsPriorFirm2) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm3) IS
    NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm4) IS NULL THEN 0 ELSE 1 END)) <> 0
    THEN (COALESCE((Number_YearsPriorFirm1), 0) + COALESCE((Number_YearsPriorFirm2), 0) +
    COALESCE((Number_YearsPriorFirm3), 0) + COALESCE((Number_YearsPriorFirm4), 0)) / ((CASE WHEN
    (Number_YearsPriorFirm1) IS NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm2) IS
    NULL THEN 0 ELSE 1 END) + (CASE WHEN (Number_YearsPriorFirm3) IS NULL THEN 0 ELSE 1 END) +
    (CASE WHEN (Number_YearsPriorFirm4) IS NULL THEN 0 ELSE 1 END)) ELSE NULL END) < 3) THEN 0
    ELSE 1 END) AS DOUBLE) AS "Quality_Score",
  CAST((AUMGrowthRate_1Year) > 0 AND (AUMGrowthRate_5Year) > 0 AS BOOLEAN) AS
    "Positive_Growth_Trajectory",
  CAST((AUMGrowthRate_1Year) > (AUMGrowthRate_5Year) / 5 AS BOOLEAN) AS "Accelerating_Growth",
  CAST(ISODOW(pit_ts) AS BIGINT) AS "Day_of_Contact",
  CAST((ISODOW(pit_ts)) >= 6 AS BOOLEAN) AS "Is_Weekend_Contact",
  pit_status,
  CASE
    WHEN contact_ts > CAST('2025-01-01T00:00:00+00:00' AS TIMESTAMPTZ) THEN 'future_contact'
    WHEN pit_status <> 'ok' THEN pit_status
    WHEN converted_ts < contact_ts THEN 'negative_days'
    WHEN contact_ts > CAST('2025-01-01T00:00:00+00:00' AS TIMESTAMPTZ) - INTERVAL 30 DAY
    THEN 'right_censored'
  END AS exclusion_reason
FROM joined
