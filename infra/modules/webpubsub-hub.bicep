// The ghost_pirates hub: clients may not connect anonymously, and every connect, connected,
// disconnected and user event is sent upstream to the app's /api/realtime/events endpoint, which
// validates the request signature with the service's access key (shared/realtime).

param webPubSubName string

@description('Host name of the Function App receiving upstream events.')
param appHostName string

param hubName string = 'ghost_pirates'

resource webPubSub 'Microsoft.SignalRService/webPubSub@2024-03-01' existing = {
  name: webPubSubName
}

resource hub 'Microsoft.SignalRService/webPubSub/hubs@2024-03-01' = {
  parent: webPubSub
  name: hubName
  properties: {
    anonymousConnectPolicy: 'deny'
    eventHandlers: [
      {
        urlTemplate: 'https://${appHostName}/api/realtime/events'
        userEventPattern: '*'
        systemEvents: [
          'connect'
          'connected'
          'disconnected'
        ]
      }
    ]
  }
}

output name string = hub.name
