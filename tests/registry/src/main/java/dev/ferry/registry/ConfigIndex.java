package dev.ferry.registry;

import io.apicurio.common.apps.config.DynamicConfigPropertyList;
import java.util.ArrayList;
import javax.enterprise.context.ApplicationScoped;
import javax.enterprise.inject.Produces;

/**
 * Stands in for the bean that Apicurio's config-index build extension would
 * generate (its deployment module is not published to Maven Central): an
 * empty list of dynamic config properties, so none can be changed at run
 * time, which the tests never do.
 */
@ApplicationScoped
public class ConfigIndex {
    @Produces
    @ApplicationScoped
    DynamicConfigPropertyList dynamicConfigProperties() {
        return new DynamicConfigPropertyList(new ArrayList<>());
    }
}
