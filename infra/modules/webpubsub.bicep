// Azure Web PubSub service for real-time team updates. The app signs client tokens and calls
// the REST API with the connection string kept in Key Vault; the hub and its event handler are
// declared in webpubsub-hub.bicep once the Function App's host name is known.

param name string
param location string
param tags object

@allowed([
  'Free_F1'
  'Standard_S1'
  'Premium_P1'
])
param skuName string = 'Standard_S1'

@minValue(1)
param capacity int = 1

@description('Server traffic (REST API, server connections) only through the private endpoint; browsers keep the public client endpoint. Needs Standard_S1 or Premium_P1.')
param privateNetworking bool = false

@description('Vault receiving the webpubsub-connection-string secret.')
param keyVaultName string

resource webPubSub 'Microsoft.SignalRService/webPubSub@2024-03-01' = {
  name: name
  location: location
  tags: tags
  // Identity for authenticating upstream event calls once the app requires Entra tokens.
  identity: {
    type: 'SystemAssigned'
  }
  sku: {
    name: skuName
    capacity: capacity
  }
  properties: {
    // Browsers connect to the client endpoint from the Internet, so public access stays enabled;
    // with private networking the public network may only open client connections, while the
    // app's REST API calls and server connections come through the private endpoint (private
    // endpoint connections fall under defaultAction Allow).
    publicNetworkAccess: 'Enabled'
    networkACLs: privateNetworking ? {
      defaultAction: 'Allow'
      publicNetwork: {
        allow: [
          'ClientConnection'
        ]
        deny: [
          'ServerConnection'
          'RESTAPI'
          'Trace'
        ]
      }
    } : {
      defaultAction: 'Allow'
    }
    disableLocalAuth: false
    disableAadAuth: false
    tls: {
      clientCertEnabled: false
    }
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource connectionStringSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41:Rewritten from the service's current key on every deploy and on key regeneration (docs/runbook.md).
  parent: vault
  name: 'webpubsub-connection-string'
  properties: {
    value: webPubSub.listKeys().primaryConnectionString
    contentType: 'text/plain'
  }
}

output id string = webPubSub.id
output name string = webPubSub.name
