// Storage for the Functions runtime, the Durable task hub (queues, tables, blobs) and the
// deployment packages. Shared keys are disabled: the app connects with its managed identity
// (AzureWebJobsStorage__accountName) and the deploy script with the deployer's Entra identity.

@description('Account name, globally unique, 3-24 lowercase letters and digits.')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object

@description('Replication: LRS for dev, ZRS where the region supports it for staging and prod.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_LRS'

@description('Private endpoints only (blob, queue, table): public network access disabled.')
param privateNetworking bool = false

@description('Container the Flex Consumption app deploys its package from.')
param deploymentContainerName string = 'app-package'

@description('Container that keeps every released package, so a failed deploy can roll back.')
param releasesContainerName string = 'releases'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_59:Public access is a parameter: disabled with blob/queue/table private endpoints when privateNetworking is on (staging, prod); dev keeps the Entra-ID-only public endpoint. checkov cannot evaluate the condition (tests/infra/test_private_networking.py asserts it).
  // checkov:skip=CKV_AZURE_35:Same as CKV_AZURE_59: defaultAction is Deny whenever privateNetworking is on.
  // checkov:skip=CKV2_AZURE_33:The private endpoints are declared in main.bicep (module private-endpoint.bicep) when privateNetworking is on; checkov does not follow module wiring.
  // checkov:skip=CKV_AZURE_206:Replication is a per-environment parameter (skuName); prod uses ZRS.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
      ipRules: []
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        file: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 14
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 14
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource releasesContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: releasesContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output deploymentContainerName string = deploymentContainer.name
output releasesContainerName string = releasesContainer.name
