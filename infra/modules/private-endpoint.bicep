// One private endpoint in the VNet's endpoint subnet for one sub-resource (groupId) of a service,
// registered in its private DNS zone through a zone group, so the service's usual host name
// resolves to the endpoint's private address inside the VNet (network.bicep links the zones).

param name string
param location string
param tags object

@description('Resource id of the service (Key Vault, storage account, cache, ...).')
param privateLinkServiceId string

@description('Private Link sub-resource: vault, blob, queue, table, redisCache, webpubsub, postgresqlServer.')
@allowed([
  'vault'
  'blob'
  'queue'
  'table'
  'redisCache'
  'webpubsub'
  'postgresqlServer'
])
param groupId string

param subnetId string

@description('Resource id of the privatelink DNS zone of this sub-resource.')
param privateDnsZoneId string

resource endpoint 'Microsoft.Network/privateEndpoints@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: {
      id: subnetId
    }
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: privateLinkServiceId
          groupIds: [
            groupId
          ]
        }
      }
    ]
  }
}

resource zoneGroup 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-01-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: groupId
        properties: {
          privateDnsZoneId: privateDnsZoneId
        }
      }
    ]
  }
}

output id string = endpoint.id
