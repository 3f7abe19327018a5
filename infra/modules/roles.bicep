// Least-privilege role assignments for the Function App's managed identity, each scoped to the
// one resource it needs, the Durable ones only for the backend in use. Web PubSub Service Owner
// is not granted: the app uses the service's connection string from Key Vault, so no data-plane
// role is needed there.

@description('Object id of the Function App system-assigned identity.')
param principalId string

param storageAccountName string

@description('The app vault only. The operations vault (postgres-admin-password) gets no role for this identity.')
param keyVaultName string

@description('The tools vault: one secret per MCP tool server, written by the app (and nothing else in it).')
param toolsKeyVaultName string
param appInsightsName string

@description('Durable backend: scheduler gets Durable Task Data Contributor on its task hub; storage gets the queue and table roles on the storage account. Only one of the two sets is assigned.')
@allowed([
  'scheduler'
  'storage'
])
param durableBackend string = 'scheduler'

param durableTaskSchedulerName string
param durableTaskHubName string

// Built-in role definition ids (stable across tenants).
var roles = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  durableTaskDataContributor: '0ad04412-c4d5-4796-b79c-f76d14c8d402'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource toolsVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: toolsKeyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// Only the task hub's id is used (as a scope), so nothing is read when the backend is storage.
resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' existing = {
  name: durableTaskSchedulerName
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' existing = {
  parent: scheduler
  name: durableTaskHubName
}

// Key Vault references and the signing-key refresh read the app vault's secrets; nothing writes them.
resource kvSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// Registering a tool server writes its headers as a secret of the tools vault, deleting it removes
// the secret, a tool call reads it: set, get and delete there, scoped to that vault alone.
resource toolsSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(toolsVault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: toolsVault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}

// The Functions host needs Blob Data Owner on its own storage (leases, package, Durable blobs).
resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

// Durable Task Scheduler: orchestrations, activities and the management API (start, status, raise
// event, terminate, purge), scoped to this app's task hub rather than the whole scheduler.
resource durableTaskDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (durableBackend == 'scheduler') {
  name: guid(taskHub.id, principalId, roles.durableTaskDataContributor)
  scope: taskHub
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.durableTaskDataContributor)
  }
}

// Storage backend only: Durable task hub work-item and control queues.
resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (durableBackend == 'storage') {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// Storage backend only: Durable task hub history and instances tables.
resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (durableBackend == 'storage') {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// Application Insights has local auth disabled: telemetry is accepted only from this identity.
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}
