// A Key Vault, deployed twice by main.bicep: the app vault (every secret the Function App reads;
// its identity is Key Vault Secrets User there) and the operations vault (deploy-only secrets such
// as the Postgres admin password; no role for the app). RBAC only (no access policies), soft
// delete and purge protection on, so a deleted vault or secret can be recovered and never silently
// purged. The optional app secrets below are written only when a value is given (main.bicep gives
// them to the app vault only), so a redeploy never reverts a secret rotated by hand
// (docs/runbook.md, "Secret rotation"). This module assigns no roles.

@description('Vault name, globally unique, 3-24 characters.')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object

@description('Days a deleted vault or secret stays recoverable.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Private endpoint only: public network access disabled (the app resolves its Key Vault references through its VNet integration).')
param privateNetworking bool = false

@description('JSON object {"<kid>": "<secret>"} of JWT signing keys; empty keeps the current secret.')
@secure()
param jwtSigningKeys string = ''

@description('Anthropic API key; empty keeps the current secret.')
@secure()
param anthropicApiKey string = ''

@description('OpenAI API key; empty keeps the current secret.')
@secure()
param openaiApiKey string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109:Public access is a parameter: disabled with a private endpoint when privateNetworking is on (staging, prod); dev keeps the RBAC-only public endpoint. checkov cannot evaluate the condition (tests/infra/test_private_networking.py asserts it).
  // checkov:skip=CKV_AZURE_189:Same as CKV_AZURE_109: publicNetworkAccess is Disabled whenever privateNetworking is on.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForTemplateDeployment: false
    enabledForDiskEncryption: false
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
      ipRules: []
    }
  }
}

resource jwtSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(jwtSigningKeys)) {
  // checkov:skip=CKV_AZURE_41:Secrets are rotated by the runbook procedure, not by expiry; an expired secret would take the app down.
  // checkov:skip=CKV_AZURE_114:contentType is set below; checkov does not read properties of conditional resources.
  parent: vault
  name: 'jwt-signing-keys'
  properties: {
    value: jwtSigningKeys
    contentType: 'application/json'
  }
}

resource anthropicSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(anthropicApiKey)) {
  // checkov:skip=CKV_AZURE_41:Secrets are rotated by the runbook procedure, not by expiry; an expired secret would take the app down.
  // checkov:skip=CKV_AZURE_114:contentType is set below; checkov does not read properties of conditional resources.
  parent: vault
  name: 'anthropic-api-key'
  properties: {
    value: anthropicApiKey
    contentType: 'text/plain'
  }
}

resource openaiSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(openaiApiKey)) {
  // checkov:skip=CKV_AZURE_41:Secrets are rotated by the runbook procedure, not by expiry; an expired secret would take the app down.
  // checkov:skip=CKV_AZURE_114:contentType is set below; checkov does not read properties of conditional resources.
  parent: vault
  name: 'openai-api-key'
  properties: {
    value: openaiApiKey
    contentType: 'text/plain'
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
