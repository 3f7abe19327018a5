// Ghost Pirates on Azure: one resource group per environment. Secrets enter only as @secure()
// parameters (read from the deployer's environment by the .bicepparam files) or are derived from
// resource keys inside the module that owns them, and are written straight into Key Vault; the
// app sees them only as Key Vault references. No output carries a secret.
// Two vaults: the app vault holds exactly the secrets the app reads (its identity is Key Vault
// Secrets User there); the operations vault holds what only deployments need (the Postgres admin
// and app-role passwords) and grants the app nothing, so the app cannot read the admin password.
// Layout and decisions: docs/infrastructure.md. Deploy: scripts/deploy.sh.

targetScope = 'resourceGroup'

@description('Environment name; drives names, sizes and protections.')
@allowed([
  'dev'
  'staging'
  'prod'
])
param environmentName string

param location string = resourceGroup().location

@description('Short prefix for resource names.')
@minLength(2)
@maxLength(6)
param namePrefix string = 'gp'

@description('Address the on-call alerts are sent to.')
param alertEmail string

@description('VNet integration + private endpoints; public network access disabled on Key Vault, Storage, Redis and Postgres, Web PubSub public for client connections only (docs/infrastructure.md, Networking). Needs Standard_S1+ Web PubSub.')
param privateNetworking bool = true

// --- secrets (never defaults with values, never outputs) ---
param postgresAdminLogin string = 'gpadmin'

@secure()
param postgresAdminPassword string

@description('Password of the app\'s least-privilege database role (postgres-app-password); scripts/deploy.sh reuses or generates it.')
@secure()
param postgresAppPassword string

@description('JSON {"<kid>": "<secret>"}; empty keeps the secret already in Key Vault.')
@secure()
param jwtSigningKeys string = ''

@secure()
param anthropicApiKey string = ''

@secure()
param openaiApiKey string = ''

// --- sizes and protections per environment ---
param storageSkuName string = 'Standard_LRS'
param postgresSkuName string = 'Standard_B1ms'
param postgresSkuTier string = 'Burstable'
param postgresStorageSizeGB int = 32
param postgresBackupRetentionDays int = 7
param postgresGeoRedundantBackup bool = false
param postgresHighAvailability bool = false
param redisSkuName string = 'Basic'
param redisCapacity int = 0
param webPubSubSkuName string = 'Free_F1'
param webPubSubCapacity int = 1
@description('Durable Functions backend: scheduler = the Durable Task Scheduler (managed, recommended for throughput, own dashboard); storage = queues, tables and blobs in the storage account (the extension\'s default, no extra resource, lower throughput). docs/infrastructure.md, "Durable backend".')
@allowed([
  'scheduler'
  'storage'
])
param durableBackend string = 'scheduler'

@allowed([
  'Consumption'
  'Dedicated'
])
param durableTaskSchedulerSkuName string = 'Consumption'

@minValue(1)
@maxValue(3)
param durableTaskSchedulerCapacity int = 1

@minValue(1)
@maxValue(90)
param durableTaskRetentionDays int = 30

param functionMaximumInstanceCount int = 40
param functionInstanceMemoryMB int = 2048
param functionAlwaysReadyHttpInstances int = 0
param logRetentionInDays int = 30

// --- plain app settings ---
param llmProvider string = 'auto'
param llmModelManager string = ''
param llmModelWorker string = ''
param jwtActiveKid string = 'k1'
param teamMaxParallel int = 3
param logLevel string = 'INFO'
param dbPoolMaxSize int = 10
param corsAllowedOrigins array = []

// --- alert thresholds ---
param http5xxPercentThreshold int = 5
param p95LatencyMsThreshold int = 2000
param databaseCpuPercentThreshold int = 80

var suffix = uniqueString(subscription().id, resourceGroup().id, environmentName)
var baseName = '${namePrefix}-${environmentName}'
// The task hub the app's host.json names (extensions.durableTask.hubName); tests/infra checks they agree.
var durableTaskHubName = 'ghostpirates'
var durableTaskSchedulerName = '${baseName}-dts-${suffix}'
var useScheduler = durableBackend == 'scheduler'
var tags = {
  application: 'ghost-pirates'
  environment: environmentName
}

module network 'modules/network.bicep' = if (privateNetworking) {
  name: 'network'
  params: {
    name: '${baseName}-vnet'
    location: location
    tags: tags
  }
}

// The app vault: every secret the Function App references (and nothing else).
module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: take('kv${namePrefix}${environmentName}${suffix}', 24)
    location: location
    tags: union(tags, {
      purpose: 'app'
    })
    privateNetworking: privateNetworking
    jwtSigningKeys: jwtSigningKeys
    anthropicApiKey: anthropicApiKey
    openaiApiKey: openaiApiKey
  }
}

// The operations vault: deploy-only secrets (postgres-admin-password, postgres-app-password),
// read by scripts/deploy.sh as the deploying principal. No role assignment for the app's
// identity targets it (roles.bicep gets the app vault only; tests/infra/test_ops_vault.py).
// deploy.sh finds each vault by its purpose tag.
module opsKeyVault 'modules/keyvault.bicep' = {
  name: 'keyvault-ops'
  params: {
    name: take('kvops${namePrefix}${environmentName}${suffix}', 24)
    location: location
    tags: union(tags, {
      purpose: 'ops'
    })
    privateNetworking: privateNetworking
  }
}

// The tools vault: one secret per registered MCP tool server (its headers, e.g. an API key), written
// and deleted by the app at run time (shared/tools/secrets.py). The app's identity is Key Vault
// Secrets Officer here and only here, so it can never rewrite the app vault's secrets.
module toolsKeyVault 'modules/keyvault.bicep' = {
  name: 'keyvault-tools'
  params: {
    name: take('kvtl${namePrefix}${environmentName}${suffix}', 24)
    location: location
    tags: union(tags, {
      purpose: 'tools'
    })
    privateNetworking: privateNetworking
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: take('st${namePrefix}${environmentName}${suffix}', 24)
    location: location
    tags: tags
    skuName: storageSkuName
    privateNetworking: privateNetworking
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: '${baseName}-logs'
    appInsightsName: '${baseName}-appi'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
    keyVaultName: keyVault.outputs.name
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  params: {
    name: '${baseName}-pg-${suffix}'
    location: location
    tags: tags
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    storageSizeGB: postgresStorageSizeGB
    backupRetentionDays: postgresBackupRetentionDays
    geoRedundantBackup: postgresGeoRedundantBackup
    highAvailability: postgresHighAvailability
    administratorLogin: postgresAdminLogin
    administratorLoginPassword: postgresAdminPassword
    appRolePassword: postgresAppPassword
    privateNetworking: privateNetworking
    keyVaultName: keyVault.outputs.name
    opsKeyVaultName: opsKeyVault.outputs.name
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  params: {
    name: '${baseName}-redis-${suffix}'
    location: location
    tags: tags
    skuName: redisSkuName
    capacity: redisCapacity
    privateNetworking: privateNetworking
    keyVaultName: keyVault.outputs.name
  }
}

module webPubSub 'modules/webpubsub.bicep' = {
  name: 'webpubsub'
  params: {
    name: '${baseName}-wps-${suffix}'
    location: location
    tags: tags
    skuName: webPubSubSkuName
    capacity: webPubSubCapacity
    privateNetworking: privateNetworking
    keyVaultName: keyVault.outputs.name
  }
}

// The Durable Task Scheduler and its task hub, when it is the Durable backend. Its data plane is a
// public, Entra-authenticated endpoint (no private endpoint in API 2025-11-01): the app reaches it
// over TLS with its identity, like the LLM providers (docs/infrastructure.md, "Durable backend").
module durableTask 'modules/durabletask.bicep' = if (useScheduler) {
  name: 'durabletask'
  params: {
    name: durableTaskSchedulerName
    location: location
    tags: tags
    taskHubName: durableTaskHubName
    skuName: durableTaskSchedulerSkuName
    capacity: durableTaskSchedulerCapacity
    retentionDays: durableTaskRetentionDays
  }
}

// Private endpoints (privateNetworking): one per service sub-resource, registered in the zones
// network.bicep links to the VNet. Storage needs blob, queue and table: the Functions host and the
// Durable task hub use all three.
module keyVaultEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-kv'
  params: {
    name: '${baseName}-pe-kv'
    location: location
    tags: tags
    privateLinkServiceId: keyVault.outputs.id
    groupId: 'vault'
    subnetId: network.outputs.privateEndpointSubnetId
    privateDnsZoneId: network.outputs.keyVaultZoneId
  }
}

// The deployer reaches the operations vault through this endpoint from inside the VNet
// (GP_DEPLOY_FROM_VNET=1); the app never calls it, so the app does not wait for it.
module opsKeyVaultEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-kv-ops'
  params: {
    name: '${baseName}-pe-kv-ops'
    location: location
    tags: tags
    privateLinkServiceId: opsKeyVault.outputs.id
    groupId: 'vault'
    subnetId: network.outputs.privateEndpointSubnetId
    privateDnsZoneId: network.outputs.keyVaultZoneId
  }
}

// The app reads and writes tool server secrets through this endpoint.
module toolsKeyVaultEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-kv-tools'
  params: {
    name: '${baseName}-pe-kv-tools'
    location: location
    tags: tags
    privateLinkServiceId: toolsKeyVault.outputs.id
    groupId: 'vault'
    subnetId: network.outputs.privateEndpointSubnetId
    privateDnsZoneId: network.outputs.keyVaultZoneId
  }
}

module storageBlobEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-blob'
  params: {
    name: '${baseName}-pe-blob'
    location: location
    tags: tags
    privateLinkServiceId: storage.outputs.id
    groupId: 'blob'
    subnetId: network.outputs.privateEndpointSubnetId
    privateDnsZoneId: network.outputs.blobZoneId
  }
}

module storageQueueEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-queue'
  params: {
    name: '${baseName}-pe-queue'
    location: location
    tags: tags
    privateLinkServiceId: storage.outputs.id
    groupId: 'queue'
    subnetId: network.outputs.privateEndpointSubnetId
    privateDnsZoneId: network.outputs.queueZoneId
  }
}

module storageTableEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-table'
  params: {
    name: '${baseName}-pe-table'
    location: location
    tags: tags
    privateLinkServiceId: storage.outputs.id
    groupId: 'table'
    subnetId: network.outputs.privateEndpointSubnetId
    privateDnsZoneId: network.outputs.tableZoneId
  }
}

module redisEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-redis'
  params: {
    name: '${baseName}-pe-redis'
    location: location
    tags: tags
    privateLinkServiceId: redis.outputs.id
    groupId: 'redisCache'
    subnetId: network.outputs.privateEndpointSubnetId
    privateDnsZoneId: network.outputs.redisZoneId
  }
}

module webPubSubEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-wps'
  params: {
    name: '${baseName}-pe-wps'
    location: location
    tags: tags
    privateLinkServiceId: webPubSub.outputs.id
    groupId: 'webpubsub'
    subnetId: network.outputs.privateEndpointSubnetId
    privateDnsZoneId: network.outputs.webPubSubZoneId
  }
}

module postgresEndpoint 'modules/private-endpoint.bicep' = if (privateNetworking) {
  name: 'pe-pg'
  params: {
    name: '${baseName}-pe-pg'
    location: location
    tags: tags
    privateLinkServiceId: postgres.outputs.id
    groupId: 'postgresqlServer'
    subnetId: network.outputs.privateEndpointSubnetId
    privateDnsZoneId: network.outputs.postgresZoneId
  }
}

// Created after every secret-writing module (and, with private networking, every private
// endpoint) so the Key Vault references and data stores resolve on first start.
module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: '${baseName}-func-${suffix}'
    planName: '${baseName}-plan'
    location: location
    tags: tags
    environmentName: environmentName
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    keyVaultUri: keyVault.outputs.uri
    toolsVaultUri: toolsKeyVault.outputs.uri
    maximumInstanceCount: functionMaximumInstanceCount
    instanceMemoryMB: functionInstanceMemoryMB
    alwaysReadyHttpInstances: functionAlwaysReadyHttpInstances
    llmProvider: llmProvider
    llmModelManager: llmModelManager
    llmModelWorker: llmModelWorker
    jwtActiveKid: jwtActiveKid
    teamMaxParallel: teamMaxParallel
    logLevel: logLevel
    dbPoolMaxSize: dbPoolMaxSize
    corsAllowedOrigins: corsAllowedOrigins
    virtualNetworkSubnetId: privateNetworking ? network.outputs.appSubnetId : ''
    durableBackend: durableBackend
    durableTaskSchedulerEndpoint: useScheduler ? durableTask.outputs.endpoint : ''
  }
  dependsOn: [
    monitoring
    postgres
    redis
    webPubSub
    keyVaultEndpoint
    toolsKeyVaultEndpoint
    storageBlobEndpoint
    storageQueueEndpoint
    storageTableEndpoint
    redisEndpoint
    webPubSubEndpoint
    postgresEndpoint
  ]
}

// The app's identity: it reads the app vault and writes the tools vault, never opsKeyVault.
module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: functionApp.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    toolsKeyVaultName: toolsKeyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    durableBackend: durableBackend
    durableTaskSchedulerName: durableTaskSchedulerName
    durableTaskHubName: durableTaskHubName
  }
  dependsOn: [
    durableTask
  ]
}

module webPubSubHub 'modules/webpubsub-hub.bicep' = {
  name: 'webpubsub-hub'
  params: {
    webPubSubName: webPubSub.outputs.name
    appHostName: functionApp.outputs.defaultHostName
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    namePrefix: baseName
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    postgresServerId: postgres.outputs.id
    appHostName: functionApp.outputs.defaultHostName
    alertEmail: alertEmail
    http5xxPercentThreshold: http5xxPercentThreshold
    p95LatencyMsThreshold: p95LatencyMsThreshold
    databaseCpuPercentThreshold: databaseCpuPercentThreshold
  }
}

// Names and endpoints only: what scripts/deploy.sh needs to find things.
output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output keyVaultName string = keyVault.outputs.name
output keyVaultUri string = keyVault.outputs.uri
output opsKeyVaultName string = opsKeyVault.outputs.name
output storageAccountName string = storage.outputs.name
output releasesContainerName string = storage.outputs.releasesContainerName
output postgresServerName string = postgres.outputs.name
output postgresFqdn string = postgres.outputs.fqdn
output postgresDatabaseName string = postgres.outputs.databaseName
output postgresAdminLoginName string = postgres.outputs.administratorLogin
output appInsightsName string = monitoring.outputs.appInsightsName
output durableTaskHubName string = durableTaskHubName
output durableTaskDashboardUri string = useScheduler ? durableTask.outputs.dashboardUrl : ''
