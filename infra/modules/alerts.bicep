// Alert rules routed to one action group. Log alerts query Application Insights (requests,
// traces, customEvents); the database CPU alert reads the server's platform metric. Each alert
// has a matching section in docs/runbook.md ("Incident response").

param namePrefix string
param location string
param tags object
param appInsightsId string
param postgresServerId string

@description('Host name of the Function App probed by the availability test.')
param appHostName string

@description('Where alerts are e-mailed (the on-call rotation address).')
param alertEmail string

@description('Alert when more than this percentage of requests answer 5xx in 15 minutes.')
@minValue(1)
@maxValue(100)
param http5xxPercentThreshold int = 5

@description('Alert when the 95th percentile request duration exceeds this many milliseconds.')
param p95LatencyMsThreshold int = 2000

@description('Alert when database CPU stays above this percentage for 15 minutes.')
@minValue(1)
@maxValue(100)
param databaseCpuPercentThreshold int = 80

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-oncall'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'gp-oncall'
    enabled: true
    emailReceivers: [
      {
        name: 'oncall'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

resource http5xxRate 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-http-5xx-rate'
  location: location
  tags: tags
  properties: {
    displayName: 'Ghost Pirates: HTTP 5xx rate above ${http5xxPercentThreshold}%'
    description: 'Runbook: docs/runbook.md#5xx-spike'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'requests | summarize total = count(), failed = countif(toint(resultCode) >= 500) | where total >= 20 | extend failedPercent = 100.0 * failed / total | where failedPercent > ${http5xxPercentThreshold}'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource p95Latency 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-p95-latency'
  location: location
  tags: tags
  properties: {
    displayName: 'Ghost Pirates: p95 latency above ${p95LatencyMsThreshold} ms'
    description: 'Runbook: docs/runbook.md#slow-requests-p95-latency'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'requests | where name !has "health" | summarize p95 = percentile(duration, 95), total = count() | where total >= 20 and p95 > ${p95LatencyMsThreshold}'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// Durable Functions tracking events land in traces with prop__functionType/prop__state.
resource failedOrchestrations 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-failed-orchestrations'
  location: location
  tags: tags
  properties: {
    displayName: 'Ghost Pirates: orchestrations failed'
    description: 'Runbook: docs/runbook.md#stuck-or-failed-orchestrations'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'traces | where tostring(customDimensions["prop__functionType"]) == "Orchestrator" and tostring(customDimensions["prop__state"]) == "Failed"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// The app logs "escalation.created" with failure_type=budget_exceeded (docs/infrastructure.md).
resource budgetEscalations 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${namePrefix}-budget-escalations'
  location: location
  tags: tags
  properties: {
    displayName: 'Ghost Pirates: teams escalated for budget'
    description: 'Runbook: docs/runbook.md#budget-escalations'
    severity: 3
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'union isfuzzy=true (traces | where message == "escalation.created" and tostring(customDimensions["failure_type"]) == "budget_exceeded"), (customEvents | where name == "budget.escalated")'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource databaseCpu 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-database-cpu'
  location: 'global'
  tags: tags
  properties: {
    description: 'Runbook: docs/runbook.md#database-cpu'
    severity: 2
    enabled: true
    scopes: [
      postgresServerId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'cpu'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.DBforPostgreSQL/flexibleServers'
          metricName: 'cpu_percent'
          operator: 'GreaterThan'
          threshold: databaseCpuPercentThreshold
          timeAggregation: 'Average'
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

// Probes /api/health from several regions; the platform health check does not exist on Flex.
resource healthProbe 'Microsoft.Insights/webtests@2022-06-15' = {
  name: '${namePrefix}-health'
  location: location
  tags: union(tags, {
    'hidden-link:${appInsightsId}': 'Resource'
  })
  kind: 'standard'
  properties: {
    SyntheticMonitorId: '${namePrefix}-health'
    Name: 'GET /api/health'
    Kind: 'standard'
    Enabled: true
    Frequency: 300
    Timeout: 30
    RetryEnabled: true
    Locations: [
      {
        Id: 'us-va-ash-azr'
      }
      {
        Id: 'emea-nl-ams-azr'
      }
      {
        Id: 'apac-sg-sin-azr'
      }
    ]
    Request: {
      RequestUrl: 'https://${appHostName}/api/health'
      HttpVerb: 'GET'
      ParseDependentRequests: false
    }
    ValidationRules: {
      ExpectedHttpStatusCode: 200
      SSLCheck: true
      SSLCertRemainingLifetimeCheck: 7
    }
  }
}

resource healthAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-health-failing'
  location: 'global'
  tags: tags
  properties: {
    description: 'Runbook: docs/runbook.md#5xx-spike'
    severity: 1
    enabled: true
    scopes: [
      healthProbe.id
      appInsightsId
    ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria'
      webTestId: healthProbe.id
      componentId: appInsightsId
      failedLocationCount: 2
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}
