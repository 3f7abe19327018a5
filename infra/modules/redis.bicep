// Azure Cache for Redis: cache and rate-limit store. TLS only (the non-TLS port is off, TLS 1.2
// minimum); the access key is folded into a rediss:// URL written straight into Key Vault.

param name string
param location string
param tags object

@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param skuName string = 'Basic'

@minValue(0)
@maxValue(6)
param capacity int = 0

@description('Private endpoint only: public network access disabled.')
param privateNetworking bool = false

@description('Vault receiving the redis-url secret.')
param keyVaultName string

resource redis 'Microsoft.Cache/redis@2024-03-01' = {
  // checkov:skip=CKV_AZURE_89:Public access is a parameter: disabled with a private endpoint when privateNetworking is on (staging, prod); dev keeps the TLS + key public endpoint. checkov cannot evaluate the condition (tests/infra/test_private_networking.py asserts it).
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
      family: skuName == 'Premium' ? 'P' : 'C'
      capacity: capacity
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    redisVersion: '6'
    redisConfiguration: {
      'maxmemory-policy': 'allkeys-lru'
    }
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource redisUrlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:Rewritten from the cache's current key on every deploy and on key regeneration (docs/runbook.md).
  parent: vault
  name: 'redis-url'
  properties: {
    value: 'rediss://:${redis.listKeys().primaryKey}@${redis.properties.hostName}:${redis.properties.sslPort}/0'
    contentType: 'text/uri-list'
  }
}

output id string = redis.id
output name string = redis.name
