// Log Analytics workspace and workspace-based Application Insights. Local (key) ingestion is
// disabled: the app sends telemetry with its managed identity (Monitoring Metrics Publisher),
// so the connection string alone cannot be used to write data. The connection string is still
// kept in Key Vault because the app reads it as a Key Vault reference.

param workspaceName string
param appInsightsName string
param location string
param tags object

@description('Days logs are kept in the workspace.')
@minValue(30)
@maxValue(730)
param retentionInDays int = 30

@description('Vault receiving the applicationinsights-connection-string secret.')
param keyVaultName string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      enableLogAccessUsingOnlyResourcePermissions: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
    IngestionMode: 'LogAnalytics'
    publicNetworkAccessForIngestion: 'Enabled'
    publicNetworkAccessForQuery: 'Enabled'
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource connectionStringSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:Derived from the Application Insights resource and rewritten on every deploy; an expiry would only break telemetry.
  parent: vault
  name: 'applicationinsights-connection-string'
  properties: {
    value: appInsights.properties.ConnectionString
    contentType: 'text/plain'
  }
}

output workspaceId string = workspace.id
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
