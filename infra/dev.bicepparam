// Development: smallest sizes, no HA, local backups; secrets come from the deployer's environment.
using 'main.bicep'

param environmentName = 'dev'
param alertEmail = readEnvironmentVariable('GP_ALERT_EMAIL', 'oncall-dev@example.com')
param postgresAdminPassword = readEnvironmentVariable('POSTGRES_ADMIN_PASSWORD')
param postgresAppPassword = readEnvironmentVariable('POSTGRES_APP_PASSWORD')
param jwtSigningKeys = readEnvironmentVariable('JWT_SIGNING_KEYS', '')
param anthropicApiKey = readEnvironmentVariable('ANTHROPIC_API_KEY', '')
param openaiApiKey = readEnvironmentVariable('OPENAI_API_KEY', '')

// Public endpoints (Entra ID, keys, TLS) keep dev cheap; Free Web PubSub has no private endpoint.
param privateNetworking = false

param storageSkuName = 'Standard_LRS'
param postgresSkuName = 'Standard_B1ms'
param postgresSkuTier = 'Burstable'
param postgresStorageSizeGB = 32
param postgresBackupRetentionDays = 7
param postgresGeoRedundantBackup = false
param postgresHighAvailability = false
param redisSkuName = 'Basic'
param redisCapacity = 0
param webPubSubSkuName = 'Free_F1'
param functionMaximumInstanceCount = 10
param functionAlwaysReadyHttpInstances = 0
param logRetentionInDays = 30
param llmProvider = 'auto'
param logLevel = 'DEBUG'
param corsAllowedOrigins = []

// Durable Functions backend: the Durable Task Scheduler (docs/infrastructure.md, "Durable backend").
param durableBackend = 'scheduler'
param durableTaskSchedulerSkuName = 'Consumption'
param durableTaskRetentionDays = 7
