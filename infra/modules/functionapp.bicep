// The Function App on a Flex Consumption plan (Linux, Python 3.11) with a system-assigned
// identity. Every secret-bearing setting is a Key Vault reference resolved by the platform with
// that identity; the app refuses to start if one is left unresolved (shared/keyvault.py).
// Runtime storage is identity-based: no account key exists anywhere.
// With private networking the app's outbound traffic (all of it, including Key Vault reference
// resolution and the runtime's storage calls) leaves through a subnet delegated to
// Microsoft.App/environments and reaches the data stores on their private endpoints; inbound, the
// API stays public (browsers and the Web PubSub upstream call it).

param name string
param planName string
param location string
param tags object

@allowed([
  'dev'
  'staging'
  'prod'
])
param environmentName string

param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerName string

@description('Vault URI with its trailing slash, e.g. https://kv-x.vault.azure.net/')
param keyVaultUri string

@description('URI of the tools vault: one secret per MCP tool server (read and written by the app).')
param toolsVaultUri string

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Instances kept warm for HTTP; 0 lets the app scale to zero.')
@minValue(0)
param alwaysReadyHttpInstances int = 0

param llmProvider string = 'auto'
param llmModelManager string = ''
param llmModelWorker string = ''
param jwtActiveKid string
param jwtTtlMinutes int = 60
param teamMaxParallel int = 3
param logLevel string = 'INFO'
param dbPoolMinSize int = 1
param dbPoolMaxSize int = 10
param corsAllowedOrigins array = []
param webPubSubHub string = 'ghost_pirates'

@description('Subnet delegated to Microsoft.App/environments for VNet integration; empty: none (dev).')
param virtualNetworkSubnetId string = ''

@description('Durable backend: scheduler (Durable Task Scheduler) or storage (the storage account).')
@allowed([
  'scheduler'
  'storage'
])
param durableBackend string = 'scheduler'

@description('Endpoint of the Durable Task Scheduler (https://<name>.<region>.durabletask.io) when durableBackend is scheduler.')
param durableTaskSchedulerEndpoint string = ''

// host.json selects the Durable Task Scheduler (azureManaged, connection DURABLE_TASK_SCHEDULER_CONNECTION_STRING);
// these app settings say the same thing explicitly, or switch to the storage account, without a
// second package: app settings named AzureFunctionsJobHost__<path> override that path of host.json.
var useScheduler = durableBackend == 'scheduler'
var durableProviderType = useScheduler ? 'azureManaged' : 'AzureStorage'
var durableConnectionName = useScheduler ? 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING' : 'AzureWebJobsStorage'
// Identity-based: the system identity (no ClientID) and no key; an empty value with the storage backend.
var durableTaskSchedulerConnection = useScheduler ? 'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity' : ''

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225:Flex Consumption places instances itself; zone redundancy is not yet offered in every region we deploy to (docs/production-checklist.md).
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17:Client certificates are not used by browser clients; callers present JWTs.
  // checkov:skip=CKV_AZURE_222:Public API by design; every route but /api/health requires a JWT.
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales out on demand; alwaysReadyHttpInstances keeps warm instances in prod.
  // checkov:skip=CKV_AZURE_213:The platform health check is not available on Flex Consumption; /api/health is probed by the availability test (alerts.bicep) and by scripts/deploy.sh.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: 'SystemAssigned'
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    vnetRouteAllEnabled: !empty(virtualNetworkSubnetId)
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: alwaysReadyHttpInstances > 0 ? [
          {
            name: 'http'
            instanceCount: alwaysReadyHttpInstances
          }
        ] : []
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      cors: {
        allowedOrigins: corsAllowedOrigins
        supportCredentials: false
      }
      appSettings: [
        // Runtime and Durable task hub storage through the managed identity (no keys).
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        // Durable backend (see the variables above).
        {
          name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__type'
          value: durableProviderType
        }
        {
          name: 'AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName'
          value: durableConnectionName
        }
        {
          name: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
          value: durableTaskSchedulerConnection
        }
        {
          name: 'ENVIRONMENT'
          value: environmentName
        }
        {
          name: 'KEY_VAULT_URL'
          value: keyVaultUri
        }
        {
          name: 'TOOL_VAULT_URL'
          value: toolsVaultUri
        }
        {
          name: 'JWT_KEYS_SECRET_NAME'
          value: 'jwt-signing-keys'
        }
        {
          name: 'JWT_ACTIVE_KID'
          value: jwtActiveKid
        }
        {
          name: 'JWT_TTL_MINUTES'
          value: string(jwtTtlMinutes)
        }
        // The Functions front end appends the client's address to X-Forwarded-For: rate limits key
        // on that entry (docs/security.md); the app refuses 0 outside local/test.
        {
          name: 'TRUSTED_PROXY_HOPS'
          value: '1'
        }
        {
          name: 'WEBPUBSUB_HUB'
          value: webPubSubHub
        }
        {
          name: 'LLM_PROVIDER'
          value: llmProvider
        }
        {
          name: 'LLM_MODEL_MANAGER'
          value: llmModelManager
        }
        {
          name: 'LLM_MODEL_WORKER'
          value: llmModelWorker
        }
        {
          name: 'TEAM_MAX_PARALLEL'
          value: string(teamMaxParallel)
        }
        {
          name: 'CORS_ALLOWED_ORIGINS'
          value: join(corsAllowedOrigins, ',')
        }
        {
          name: 'LOG_LEVEL'
          value: logLevel
        }
        {
          name: 'DB_POOL_MIN_SIZE'
          value: string(dbPoolMinSize)
        }
        {
          name: 'DB_POOL_MAX_SIZE'
          value: string(dbPoolMaxSize)
        }
        // Telemetry is sent with the identity (Monitoring Metrics Publisher); local auth is off.
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'Authorization=AAD'
        }
        // Secrets: Key Vault references only, resolved by the platform with the identity.
        {
          name: 'DATABASE_URL'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/database-url/)'
        }
        {
          name: 'REDIS_URL'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/redis-url/)'
        }
        {
          name: 'JWT_SIGNING_KEYS'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/jwt-signing-keys/)'
        }
        {
          name: 'WEBPUBSUB_CONNECTION_STRING'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/webpubsub-connection-string/)'
        }
        {
          name: 'ANTHROPIC_API_KEY'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/anthropic-api-key/)'
        }
        {
          name: 'OPENAI_API_KEY'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/openai-api-key/)'
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/applicationinsights-connection-string/)'
        }
      ]
    }
  }
}

// Publishing with basic (user/password) credentials is off; deployments authenticate with Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output id string = site.id
output principalId string = site.identity.principalId
output defaultHostName string = site.properties.defaultHostName
